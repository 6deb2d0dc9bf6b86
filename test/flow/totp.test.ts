import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import { totpCode } from '../../src/factors/totp/otp.ts';
import { FormBrowser, decodeEntities, findForm, textOf, type Page } from '../support/browser.ts';
import { latestMail, openDelivery } from '../support/mail.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { codeAt, secretIn } from '../support/otp.ts';
import { relyingParty, startAuthorization } from '../support/relying-party.ts';

let nyckel: TestNyckel;
const callbackStop = (url: URL) => url.port === '4000';
let counter = 0;
const CLIENT = 'authapp';
const MAX_FAILURES = 5;

beforeAll(async () => {
  nyckel = await startTestNyckel({ env: { NYCKEL_FACTOR_MAX_FAILURES: String(MAX_FAILURES), NYCKEL_TOTP_ISSUER: 'TDC Nyckel' } });
});
afterAll(() => nyckel?.stop());

/** A user with no second factor yet: their only address is not verified. */
async function newUser() {
  const email = `app${++counter}@tdc.example`;
  const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
  await nyckel.db.prisma.userEmail.updateMany({ where: { userId: user.id }, data: { verifiedAt: null } });
  return { email, user };
}

async function passwordStep(email: string, browser = new FormBrowser(callbackStop)) {
  const config = await relyingParty(nyckel.url, CLIENT);
  const start = await startAuthorization(config, { redirect_uri: `http://localhost:4000/${CLIENT}-cb`, scope: 'openid email' });
  let page = await browser.go(start.url.toString());
  page = await browser.submit(page, '/login', { email, password: TEST_PASSWORD });
  return { config, start, browser, page };
}

async function tokensFrom(config: oidc.Configuration, start: Awaited<ReturnType<typeof startAuthorization>>, page: Page) {
  expect(page.url).toContain('code=');
  return oidc.authorizationCodeGrant(config, new URL(page.url), { pkceCodeVerifier: start.verifier, expectedState: start.state, expectedNonce: start.nonce });
}

/** A code that none of the steps around now accepts. */
async function wrongCode(secret: string): Promise<string> {
  const right = new Set(await Promise.all([-2, -1, 0, 1, 2].map((s) => totpCode(secret, Math.floor(Date.now() / 1000) + s * 30))));
  return ['000000', '111111', '222222', '333333', '444444', '555555'].find((c) => !right.has(c))!;
}

function recoveryCodesIn(html: string): string[] {
  const pre = /<pre class="recovery-codes"[^>]*>([\s\S]*?)<\/pre>/.exec(html);
  if (!pre) throw new Error(`no recovery codes in page:\n${textOf(html).slice(0, 1000)}`);
  return pre[1].trim().split(/\s+/);
}

/** Signs in to the authapp client, enrolling an authenticator app on the way (step −1 is used). */
async function enrolled() {
  const { email, user } = await newUser();
  const flow = await passwordStep(email);
  expect(flow.page.url).toMatch(/\/mfa\/enrol$/);
  expect(textOf(flow.page.html)).toContain('Set up an authenticator app');
  const setup = await flow.browser.submit(flow.page, '/mfa/enrol/totp/start', {});
  expect(setup.status).toBe(200);
  const secret = secretIn(setup.html);
  expect(secret).toMatch(/^[A-Z2-7]{32}$/);
  // Setting up on the same phone: the otpauth:// link the QR code holds, with the same secret.
  const appLink = decodeEntities(/<a href="(otpauth:[^"]+)" id="open-in-app">/.exec(setup.html)![1]);
  expect(new URL(appLink).searchParams.get('secret')).toBe(secret);
  const done = await flow.browser.submit(setup, '/verify', { label: 'My phone', code: await codeAt(secret, -1) });
  expect(done.status).toBe(200);
  const codes = recoveryCodesIn(done.html);
  const tokens = await tokensFrom(flow.config, flow.start, await flow.browser.submit(done, '/mfa/continue', {}));
  return { email, user, secret, codes, tokens, setup, done };
}

/**
 * A new sign-in of an enrolled user, on the code page of `factor`: the app's page at once (recovery
 * codes are a backup, offered through "Use another method").
 */
async function codePage(email: string, factor: 'totp' | 'recovery-code') {
  const flow = await passwordStep(email);
  expect(flow.page.url).toMatch(/\/mfa\/totp(\?send=1)?$/);
  if (factor === 'totp') return flow;
  const other = /href="([^"]*\/mfa\?choose=1)"/.exec(flow.page.html)![1];
  const choose = await flow.browser.go(new URL(other, nyckel.url).toString());
  expect(textOf(choose.html)).toContain('Confirm it is you');
  expect(textOf(choose.html)).toMatch(/Authenticator app.*Recovery code/);
  const page = await flow.browser.go(new URL(/href="([^"]*\/mfa\/recovery-code\?send=1)"/.exec(choose.html)![1], nyckel.url).toString());
  expect(page.url).toMatch(/\/mfa\/recovery-code(\?send=1)?$/);
  return { ...flow, page };
}

describe('authenticator app (TOTP)', () => {
  test('enrolled during sign-in by QR code and a code; recovery codes shown once; acr mfa, amr pwd+otp', async () => {
    const { user, secret, codes, tokens, setup, done } = await enrolled();
    expect(tokens.claims()).toMatchObject({ acr: 'urn:nyckel:acr:mfa', amr: ['pwd', 'otp', 'mfa'] });

    // The setup page: a QR code with alt text, the key for typing by hand, a name field.
    expect(setup.html).toMatch(/<img src="data:image\/png;base64,[A-Za-z0-9+/=]+" width="240" height="240" alt="QR code for your authenticator app">/);
    expect(setup.html).toMatch(/<label for="label">Name \(optional\)<\/label>/);
    expect(setup.html).toContain('placeholder="My phone"');

    // Ten codes, xxxxx-xxxxx, with a download of the same text.
    expect(codes).toHaveLength(10);
    for (const code of codes) expect(code).toMatch(/^[a-z2-9]{5}-[a-z2-9]{5}$/);
    const download = decodeURIComponent(decodeEntities(/href="data:text\/plain;charset=utf-8,([^"]+)" download=/.exec(done.html)![1]));
    for (const code of codes) expect(download).toContain(code);

    // Stored: the named app with a sealed secret; the codes only as hashes.
    const rows = await nyckel.db.prisma.factorEnrolment.findMany({ where: { userId: user.id } });
    const app = rows.find((r) => r.type === 'totp')!;
    expect(app).toMatchObject({ label: 'My phone', confirmed: true });
    expect(Buffer.from(app.secret!).toString('latin1')).not.toContain(secret);
    const stored = JSON.stringify(rows.filter((r) => r.type === 'recovery-code'));
    expect(rows.filter((r) => r.type === 'recovery-code')).toHaveLength(10);
    for (const code of codes) {
      expect(stored).not.toContain(code);
      expect(stored).not.toContain(code.replace('-', ''));
    }
  });

  test('a user who has a second factor cannot add an app after only the password', async () => {
    const email = `verified${++counter}@tdc.example`;
    await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
    const flow = await passwordStep(email);
    // The verified address is the method: a code by email (sent at once), not an offer to set up an app.
    expect(flow.page.url).toMatch(/\/mfa\/email-code\/challenge\/[0-9a-f-]{36}$/);
    const mfa = flow.page.url.replace(/\/email-code\/challenge\/[^/]+$/, '');
    const enrol = await flow.browser.go(`${mfa}/enrol`);
    expect(enrol.html).not.toContain('/mfa/enrol/totp/start');
    const csrf = /name="_csrf" value="([^"]+)"/.exec(flow.page.html)![1];
    const refused = await flow.browser.go(`${mfa}/enrol/totp/start`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: csrf }).toString(),
    });
    expect(refused.status).toBe(404);
  });

  test('a wrong code during enrolment keeps the setup page and confirms nothing', async () => {
    const { email, user } = await newUser();
    const flow = await passwordStep(email);
    const setup = await flow.browser.submit(flow.page, '/mfa/enrol/totp/start', {});
    const secret = secretIn(setup.html);
    const wrong = await flow.browser.submit(setup, '/verify', { label: 'Work phone', code: await wrongCode(secret) });
    expect(wrong.status).toBe(401);
    expect(textOf(wrong.html)).toContain('That code is not right');
    expect(wrong.html).toContain('alt="QR code for your authenticator app"');
    expect(wrong.html).toContain('value="Work phone"');
    expect(await nyckel.db.prisma.factorEnrolment.count({ where: { userId: user.id, confirmed: true } })).toBe(0);
    const done = await flow.browser.submit(wrong, '/verify', { label: 'Work phone', code: await codeAt(secret, 0) });
    expect(recoveryCodesIn(done.html)).toHaveLength(10);
  });

  test('next sign-in with a code from the app; the same code is refused after; 20 parallel uses of one code: one wins', async () => {
    const { email, secret } = await enrolled();

    const code = await codeAt(secret, 0);
    const first = await codePage(email, 'totp');
    expect(textOf(first.page.html)).toContain('type the 6-digit code it shows');
    expect(first.page.html).not.toContain('/resend');
    const tokens = await tokensFrom(first.config, first.start, await first.browser.submit(first.page, '/verify', { code }));
    expect(tokens.claims()).toMatchObject({ acr: 'urn:nyckel:acr:mfa', amr: ['pwd', 'otp', 'mfa'] });

    // The same code again (still within its 30 seconds): refused.
    const replay = await codePage(email, 'totp');
    const refused = await replay.browser.submit(replay.page, '/verify', { code });
    expect(refused.status).toBe(400);
    expect(refused.url).not.toContain('code=');
    expect(textOf(refused.html)).toContain('That code has already been used');

    const next = await codeAt(secret, 1);
    const parallel = await codePage(email, 'totp');
    const results = await Promise.all(Array.from({ length: 20 }, () => parallel.browser.submit(parallel.page, '/verify', { code: next })));
    expect(results.filter((r) => r.url.includes('code='))).toHaveLength(1);
    // The others are refused, or (arriving after the winner ended the sign-in) told they are already signed in; none gets a code.
    for (const r of results.filter((r) => !r.url.includes('code='))) expect(r.status >= 400 || textOf(r.html).includes('You are already signed in')).toBe(true);
  });

  test('the password step leads to the code page in one hop, and that address shows it again on reload', async () => {
    const { email, secret } = await enrolled();
    const config = await relyingParty(nyckel.url, CLIENT);
    const start = await startAuthorization(config, { redirect_uri: `http://localhost:4000/${CLIENT}-cb`, scope: 'openid email' });
    const browser = new FormBrowser(callbackStop);
    const login = await browser.go(start.url.toString());
    const form = findForm(login.html, '/login');
    const answer = await browser.request(new URL(form.action, login.url).toString(), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...form.hidden, email, password: TEST_PASSWORD }).toString(),
    });
    expect(answer.status).toBe(303);
    const location = new URL(answer.headers.get('location')!, login.url);
    expect(location.pathname + location.search).toMatch(/^\/interaction\/[^/]+\/mfa\/totp\?send=1$/);
    const shown = [await browser.request(location.toString()), await browser.request(location.toString())];
    for (const page of shown) {
      expect(page.status).toBe(200);
      expect(textOf(page.html)).toContain('type the 6-digit code it shows');
    }
    const tokens = await tokensFrom(config, start, await browser.submit(shown[1], '/verify', { code: await codeAt(secret, 0) }));
    expect(tokens.claims()).toMatchObject({ acr: 'urn:nyckel:acr:mfa', amr: ['pwd', 'otp', 'mfa'] });
  });

  test('"don\'t ask again in this browser" is chosen on the code page', async () => {
    const { email, user, secret } = await enrolled();
    const flow = await codePage(email, 'totp');
    expect(flow.page.html).toMatch(/<input type="checkbox" name="remember" id="remember" value="yes">/);
    const done = await flow.browser.submit(flow.page, '/verify', { code: await codeAt(secret, 0), remember: 'yes' });
    await tokensFrom(flow.config, flow.start, done);
    expect(await nyckel.db.prisma.rememberedBrowser.count({ where: { userId: user.id } })).toBe(1);

    const config = await relyingParty(nyckel.url, CLIENT);
    const start = await startAuthorization(config, { redirect_uri: `http://localhost:4000/${CLIENT}-cb`, scope: 'openid', prompt: 'login' });
    const page = await flow.browser.submit(await flow.browser.go(start.url.toString()), '/login', { email, password: TEST_PASSWORD });
    expect((await tokensFrom(config, start, page)).claims()).toMatchObject({ acr: 'urn:nyckel:acr:password', amr: ['pwd'] });
  });

  test('wrong codes lock the app for every session: no more than the budget reach the check', async () => {
    const { email, secret, codes } = await enrolled();
    const flow = await codePage(email, 'totp');
    const wrong = await wrongCode(secret);
    const results = await Promise.all(Array.from({ length: MAX_FAILURES + 5 }, () => flow.browser.submit(flow.page, '/verify', { code: wrong })));
    // Each attempt is counted before the code is compared: the last one of the budget already says "locked".
    expect(results.filter((r) => r.status === 401)).toHaveLength(MAX_FAILURES - 1);
    expect(results.filter((r) => r.status === 429)).toHaveLength(6);
    const right = await flow.browser.submit(flow.page, '/verify', { code: await codeAt(secret, 0) });
    expect(right.status).toBe(429);
    expect(right.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(textOf(right.html)).toMatch(/Too many wrong codes\. Try again in \d+ min\b/);

    const other = await codePage(email, 'totp');
    expect((await other.browser.submit(other.page, '/verify', { code: await codeAt(secret, 1) })).status).toBe(429);

    // Another method still works: the recovery codes have their own lock.
    const backup = await codePage(email, 'recovery-code');
    const accepted = await backup.browser.submit(backup.page, '/verify', { code: codes[0] });
    expect(textOf(accepted.html)).toContain('Recovery code accepted');
  });
});

describe('recovery codes', () => {
  test('a recovery code signs in once, tells how many are left and queues a mail; 20 parallel uses of one: one wins', async () => {
    const { email, codes } = await enrolled();

    const flow = await codePage(email, 'recovery-code');
    expect(flow.page.html).toContain('inputmode="text"');
    const accepted = await flow.browser.submit(flow.page, '/verify', { code: ` ${codes[0].toUpperCase()} ` });
    expect(accepted.status).toBe(200);
    expect(textOf(accepted.html)).toContain('You used a recovery code. You have 9 left.');
    const mail = await latestMail(nyckel.db.prisma, email);
    expect(mail.subject).toBe('A recovery code was used (9 left)');
    expect(mail.text).toContain('to sign in to Authenticator portal');
    expect(mail.text).toContain('You have 9 recovery code(s) left');
    const tokens = await tokensFrom(flow.config, flow.start, await flow.browser.submit(accepted, '/mfa/continue', {}));
    expect(tokens.claims()).toMatchObject({ acr: 'urn:nyckel:acr:mfa', amr: ['pwd', 'otp', 'mfa'] });

    const again = await codePage(email, 'recovery-code');
    const used = await again.browser.submit(again.page, '/verify', { code: codes[0] });
    expect(used.status).toBe(400);
    expect(textOf(used.html)).toContain('That code has already been used');

    const parallel = await codePage(email, 'recovery-code');
    const results = await Promise.all(Array.from({ length: 20 }, () => parallel.browser.submit(parallel.page, '/verify', { code: codes[1] })));
    // One sign-in sending one code 20 times: used once (8 left, one mail), and every answer just goes on.
    for (const r of results) expect([r.status, textOf(r.html)]).toEqual([200, expect.stringContaining('Recovery code accepted')]);
    expect(textOf(results[0].html)).toContain('You have 8 left.');
    const mails = (await nyckel.db.prisma.delivery.findMany({ where: { recipient: email } })).map((row) => openDelivery(nyckel.db.prisma, row));
    expect(mails.filter((mail) => mail.subject === 'A recovery code was used (8 left)')).toHaveLength(1);
    expect((await tokensFrom(parallel.config, parallel.start, await parallel.browser.submit(results[0], '/mfa/continue', {}))).claims()).toMatchObject({
      acr: 'urn:nyckel:acr:mfa',
    });
  });

  test('a made-up recovery code is a wrong code', async () => {
    const { email } = await enrolled();
    const flow = await codePage(email, 'recovery-code');
    const wrong = await flow.browser.submit(flow.page, '/verify', { code: 'abcde-23456' });
    expect(wrong.status).toBe(401);
    expect(textOf(wrong.html)).toContain('That code is not right');
  });
});
