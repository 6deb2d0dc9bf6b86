import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import * as oidc from 'openid-client';
import { FormBrowser, textOf } from '../support/browser.ts';
import { codeIn, latestMail, smsTo } from '../support/mail.ts';
import { codeAt } from '../support/otp.ts';
import { relyingParty, startAuthorization } from '../support/relying-party.ts';
import { accountPages, callbackStop } from '../support/account-pages.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';

let nyckel: TestNyckel;
const { newUser, url, signInWithPassword, addApp, audits } = accountPages(() => nyckel, 'acct');

beforeAll(async () => {
  // A number proven here is signed in with at once: no send cooldown between the two (test/flow/send-limits.test.ts has it).
  nyckel = await startTestNyckel({ env: { NYCKEL_ACCOUNT_RECENT_AUTH_MINUTES: '10', NYCKEL_CODE_RESEND_COOLDOWN: '0' } });
});
afterAll(() => nyckel?.stop());

describe('account pages', () => {
  test("the account pages' own sign-in names Nyckel, not an English phrase, in Swedish and Danish", async () => {
    for (const [locale, expected] of [
      ['sv', 'Inloggning till Nyckel'],
      ['da', 'Login til Nyckel'],
    ]) {
      const page = await new FormBrowser(callbackStop).go(url(`/account/login?ui_locales=${locale}`));
      expect(textOf(page.html)).toContain(expected);
      expect(textOf(page.html)).not.toContain('Nyckel account');
    }
  });

  test('a user with no second factor signs in with the password and adds an authenticator app (with recovery codes)', async () => {
    const { email, user } = await newUser();
    const { browser, page } = await signInWithPassword(email);
    expect(page.status).toBe(200);
    expect(new URL(page.url).pathname).toBe('/account');
    expect(textOf(page.html)).toContain(`Signed in as ${email}`);
    expect(textOf(page.html)).toContain('You have no second sign-in method yet');

    const { done } = await addApp(browser, page, 'Work phone', -1);
    expect(done.status).toBe(200);
    expect(textOf(done.html)).toContain('Save your recovery codes');
    const back = await browser.go(url('/account'));
    expect(textOf(back.html)).toContain('Work phone');
    expect(textOf(back.html)).toContain('You have 10 unused recovery codes');
    expect(await audits(user.id)).toEqual(expect.arrayContaining(['account.signed_in', 'account.method_added', 'recovery-codes.generated']));
    const mail = await latestMail(nyckel.db.prisma, email);
    expect(mail.subject).toBe('Your Nyckel account was changed');
    expect(mail.text).toContain('A new sign-in method was added to your account');
    expect(mail.text).toContain('Work phone');
  });

  test('once the user has a second factor, the account pages ask for it; a second app can then be added and named', async () => {
    const { email, user } = await newUser();
    const first = await signInWithPassword(email);
    const { secret } = await addApp(first.browser, first.page, 'Phone', -1);

    // A new browser: password, then the app (step-up), then the account page.
    const browser = new FormBrowser(callbackStop);
    let page = await browser.go(url('/account'));
    page = await browser.submit(page, '/login', { email, password: TEST_PASSWORD });
    expect(page.url).toMatch(/\/mfa\/totp(\?send=1)?$/);
    page = await browser.submit(page, '/verify', { code: await codeAt(secret, 0) });
    expect(new URL(page.url).pathname).toBe('/account');
    expect(textOf(page.html)).toContain('Phone');

    const second = await addApp(browser, page, 'Tablet', 1);
    // Not the first second factor: no new recovery codes, straight back to the overview.
    expect(new URL(second.done.url).pathname).toBe('/account');
    expect(textOf(second.done.html)).toContain('The new sign-in method is ready');
    const apps = await nyckel.db.prisma.factorEnrolment.findMany({ where: { userId: user.id, type: 'totp', confirmed: true }, orderBy: { createdAt: 'asc' } });
    expect(apps.map((a) => a.label)).toEqual(['Phone', 'Tablet']);
  });

  test('a wrong code keeps the setup open with a clear message; garbage never gives a 500', async () => {
    const { email } = await newUser();
    const { browser, page } = await signInWithPassword(email);
    const setup = await browser.submit(page, '/account/add/totp', {});
    const wrong = await browser.submit(setup, '/verify', { label: 'X', code: '12' });
    expect(wrong.status).toBe(400);
    expect(textOf(wrong.html)).toContain('Type the digits of the code');
    const bad = await browser.go(url('/account/add/totp/not-a-uuid'));
    expect(bad.status).toBe(400);
    const csrf = await browser.request(url('/account/add/totp'), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: '_csrf=forged',
    });
    expect(csrf.status).toBe(403);
    const rename = await browser.submit(page, /\/account\/add\/totp$/, {}).then(() =>
      browser.request(url('/account/enrolments/00000000-0000-0000-0000-000000000000/remove'), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `_csrf=${encodeURIComponent(/name="_csrf" value="([^"]+)"/.exec(page.html)![1])}`,
      }),
    );
    expect(rename.status).toBe(404);
  });

  test('signed out, every page and change leads to signing in', async () => {
    const browser = new FormBrowser();
    const page = await browser.request(url('/account'));
    expect(page.status).toBe(303);
    expect(page.headers.get('location')).toMatch(/^\/account\/login\?return=%2Faccount$/);
    const post = await browser.request(url('/account/browsers/forget'), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: '_csrf=x',
    });
    expect(post.status).toBe(403);
  });
});

describe('changes need a recent sign-in', () => {
  test('after NYCKEL_ACCOUNT_RECENT_AUTH_MINUTES a change asks to sign in again (max_age=0)', async () => {
    const { email } = await newUser();
    const { browser, page } = await signInWithPassword(email);
    const later = Date.now() + 11 * 60_000;
    const spy = jest.spyOn(Date, 'now').mockImplementation(() => later);
    try {
      const form = await browser.request(url('/account/password'));
      expect(form.status).toBe(303);
      expect(form.headers.get('location')).toBe('/account/login?return=%2Faccount%2Fpassword&fresh=1');
      const login = await browser.request(url(form.headers.get('location')!));
      expect(new URL(login.headers.get('location')!).searchParams.get('max_age')).toBe('0');
    } finally {
      spy.mockRestore();
    }
    // Still recent now: the page opens.
    expect((await browser.go(url('/account/password'))).status).toBe(200);
    expect(page.status).toBe(200);
  });
});

describe('password', () => {
  test('a wrong current password, different new ones and a common one are refused clearly; a good one works and is mailed', async () => {
    const { email, user } = await newUser();
    const { browser } = await signInWithPassword(email);
    let page = await browser.go(url('/account/password'));
    let result = await browser.submit(page, '/account/password', {
      current: 'wrong password here',
      password: 'a brand new passphrase',
      confirm: 'a brand new passphrase',
    });
    expect(result.status).toBe(401);
    expect(textOf(result.html)).toContain('The current password is not right');
    result = await browser.submit(page, '/account/password', {
      current: TEST_PASSWORD,
      password: 'a brand new passphrase',
      confirm: 'something else entirely',
    });
    expect(result.status).toBe(400);
    expect(textOf(result.html)).toContain('not the same');
    result = await browser.submit(page, '/account/password', { current: TEST_PASSWORD, password: 'password123', confirm: 'password123' });
    expect(result.status).toBe(400);
    expect(textOf(result.html)).toContain('too common');
    page = await browser.submit(page, '/account/password', { current: TEST_PASSWORD, password: 'a brand new passphrase', confirm: 'a brand new passphrase' });
    expect(new URL(page.url).pathname).toBe('/account');
    expect(textOf(page.html)).toContain('Your password is changed');
    expect(await nyckel.accounts.verifyPassword(email, TEST_PASSWORD)).toBeNull();
    expect(await nyckel.accounts.verifyPassword(email, 'a brand new passphrase')).not.toBeNull();
    expect((await latestMail(nyckel.db.prisma, email)).text).toContain('was changed');
    expect(await audits(user.id)).toContain('user.password_changed');
  });
});

describe('contact addresses and numbers', () => {
  test('an added email address is verified by a code mailed to it, then counts as a method', async () => {
    const { email, user } = await newUser();
    const { browser, page } = await signInWithPassword(email);
    const other = `other-${email}`;
    let proof = await browser.submit(page, '/account/emails', { value: other });
    expect(proof.status).toBe(200);
    expect(new URL(proof.url).pathname).toMatch(/^\/account\/verify\/email\//);
    const code = codeIn((await latestMail(nyckel.db.prisma, other)).text);
    const wrong = code === '000000' ? '111111' : '000000';
    proof = await browser.submit(proof, '/verify', { code: wrong });
    expect(proof.status).toBe(401);
    const done = await browser.submit(proof, '/verify', { code });
    expect(new URL(done.url).pathname).toBe('/account');
    const row = await nyckel.db.prisma.userEmail.findFirst({ where: { userId: user.id, address: other } });
    expect(row?.verifiedAt).not.toBeNull();
    expect((await nyckel.db.prisma.user.findUnique({ where: { id: user.id } }))!.methodOrder).toEqual(['email-code']);
  });

  test('an added mobile number is verified by an SMS code; then SMS sign-in works for it', async () => {
    const { email, user } = await newUser();
    const { browser, page } = await signInWithPassword(email);
    const bad = await browser.submit(page, '/account/phones', { value: 'not a number' });
    expect(bad.status).toBe(400);
    expect(textOf(bad.html)).toMatch(/number/i);
    const proof = await browser.submit(page, '/account/phones', { value: '+46 70 123 45 67' });
    expect(proof.status).toBe(200);
    expect(textOf(proof.html)).toContain('67');
    const [sms] = await smsTo(nyckel.db.prisma, '+46701234567');
    const code = /#(\d{6})$/.exec(sms.text)![1];
    const done = await browser.submit(proof, '/verify', { code });
    expect(new URL(done.url).pathname).toBe('/account');
    expect((await nyckel.db.prisma.userPhone.findFirst({ where: { userId: user.id } }))?.verifiedAt).not.toBeNull();

    // The care portal (SMS) now signs this user in with the number.
    const config = await relyingParty(nyckel.url, 'care');
    const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/care-cb', scope: 'openid email' });
    const rp = new FormBrowser(callbackStop);
    let signIn = await rp.go(start.url.toString());
    signIn = await rp.submit(signIn, '/login', { email, password: TEST_PASSWORD });
    // SMS starts at once: the code goes to the one number (its second text, after the proof's).
    expect(new URL(signIn.url).pathname).toMatch(/\/mfa\/sms\/challenge\/[0-9a-f-]{36}$/);
    expect(await smsTo(nyckel.db.prisma, '+46701234567')).toHaveLength(2);
    const text = (await smsTo(nyckel.db.prisma, '+46701234567'))[0].text;
    signIn = await rp.submit(signIn, '/verify', { code: /#(\d{6})$/.exec(text)![1] });
    const tokens = await oidc.authorizationCodeGrant(config, new URL(signIn.url), {
      pkceCodeVerifier: start.verifier,
      expectedState: start.state,
      expectedNonce: start.nonce,
    });
    expect(tokens.claims()!.amr).toEqual(['pwd', 'sms', 'mfa']);
  });
});

describe('delete all my devices (lost device)', () => {
  test('with the password and an email code every device goes, other sessions end, and a new app can be added at once', async () => {
    const { email, user } = await newUser({ verifiedEmail: true });
    // A session elsewhere (the care portal's first-party app needs no second factor).
    const config = await relyingParty(nyckel.url, 'spa');
    const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/spa-cb', scope: 'openid email' });
    const elsewhereBrowser = new FormBrowser(callbackStop);
    const signedIn = await elsewhereBrowser.submit(await elsewhereBrowser.go(start.url.toString()), '/login', { email, password: TEST_PASSWORD });
    expect(signedIn.url).toContain('code=');
    await nyckel.db.prisma.factorEnrolment.create({ data: { userId: user.id, type: 'totp', label: 'Lost phone', confirmed: true } });
    await nyckel.db.prisma.userPhone.create({ data: { userId: user.id, e164: '+46701112233', verifiedAt: new Date() } });
    const sessionsOfUser = () => nyckel.db.prisma.oidcModel.count({ where: { type: 'Session', payload: { path: ['accountId'], equals: user.id } } });
    expect(await sessionsOfUser()).toBe(1);

    // Password only: the lost-device page, nothing else.
    const { browser, page } = await (async () => {
      const b = new FormBrowser(callbackStop);
      let p = await b.go(url('/account/lost-device'));
      p = await b.submit(p, '/login', { email, password: TEST_PASSWORD });
      return { browser: b, page: p };
    })();
    expect(new URL(page.url).pathname).toBe('/account/lost-device');
    expect(textOf(page.html)).toContain('Delete all my devices');
    expect(await sessionsOfUser()).toBe(2);
    const elsewhere = await browser.request(url('/account'));
    expect(elsewhere.headers.get('location')).toContain('/account/login');

    const noChoice = await browser.submit(page, '/account/lost-device/start', {});
    expect(noChoice.status).toBe(400);
    const target = /name="target"[^>]*value="([0-9a-f-]{36})"/.exec(page.html)![1];
    let codePage = await browser.submit(page, '/account/lost-device/start', { target });
    expect(new URL(codePage.url).pathname).toMatch(/^\/account\/lost-device\/[0-9a-f-]{36}$/);
    const code = codeIn((await latestMail(nyckel.db.prisma, email)).text);
    codePage = await browser.submit(codePage, '/verify', { code: code === '000000' ? '111111' : '000000' });
    expect(codePage.status).toBe(401);
    expect(await nyckel.db.prisma.factorEnrolment.count({ where: { userId: user.id } })).toBe(1);
    const done = await browser.submit(codePage, '/verify', { code });
    expect(new URL(done.url).pathname).toBe('/account');
    expect(textOf(done.html)).toContain('All your devices are deleted');
    expect(await nyckel.db.prisma.factorEnrolment.count({ where: { userId: user.id } })).toBe(0);
    expect(await nyckel.db.prisma.userPhone.count({ where: { userId: user.id } })).toBe(0);
    // Only this browser's session is left: the portal's is gone.
    expect(await sessionsOfUser()).toBe(1);
    expect(await nyckel.accounts.findById(user.id)).not.toBeNull();
    expect(await audits(user.id)).toContain('user.factors_reset');
    expect((await latestMail(nyckel.db.prisma, email)).text).toContain('All devices and sign-in methods were deleted');

    // The used code does not work twice, and a new app is added without asking for the old device.
    const replay = await browser.submit(codePage, '/verify', { code });
    expect(replay.status).toBeGreaterThanOrEqual(400);
    expect(await nyckel.db.prisma.factorEnrolment.count({ where: { userId: user.id } })).toBe(0);
    const added = await addApp(browser, done, 'New phone', 0);
    expect(textOf(added.done.html)).toContain('Save your recovery codes');
  });
});
