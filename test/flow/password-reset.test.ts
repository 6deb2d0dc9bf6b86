import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import { FormBrowser, textOf, type Page } from '../support/browser.ts';
import { codeIn, openDelivery } from '../support/mail.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { codeAt, secretIn } from '../support/otp.ts';
import { relyingParty, startAuthorization, type AuthorizationStart } from '../support/relying-party.ts';

let nyckel: TestNyckel;
const callbackStop = (url: URL) => url.port === '4000';
const NEW_PASSWORD = 'a new and rather long passphrase';
let counter = 0;

beforeAll(async () => {
  nyckel = await startTestNyckel({ env: { NYCKEL_FACTOR_MAX_FAILURES: '3', NYCKEL_CODE_RESEND_COOLDOWN: '0' } });
});
afterAll(() => nyckel?.stop());

/** The login page of `client`, then "Forgot your password?". */
async function forgotPage(client: string, scope = 'openid email') {
  const config = await relyingParty(nyckel.url, client);
  const start = await startAuthorization(config, { redirect_uri: `http://localhost:4000/${client}-cb`, scope, ui_locales: 'en' });
  const browser = new FormBrowser(callbackStop);
  const login = await browser.go(start.url.toString());
  const link = /href="(\/interaction\/[^"]+\/forgot-password)"/.exec(login.html);
  expect(link).not.toBeNull();
  const page = await browser.go(new URL(link![1], nyckel.url).toString());
  expect(page.status).toBe(200);
  return { config, start, browser, page };
}

async function tokensFrom(config: oidc.Configuration, start: AuthorizationStart, page: Page) {
  expect(page.url).toContain('code=');
  return oidc.authorizationCodeGrant(config, new URL(page.url), { pkceCodeVerifier: start.verifier, expectedState: start.state, expectedNonce: start.nonce });
}

/** The code of the newest reset mail to an address. */
async function resetCode(address: string): Promise<string> {
  const delivery = await nyckel.db.prisma.delivery.findFirst({ where: { recipient: address, purpose: 'password-reset' }, orderBy: { createdAt: 'desc' } });
  if (!delivery) throw new Error(`no reset mail to ${address}`);
  return codeIn(openDelivery(nyckel.db.prisma, delivery).text);
}

/** Name, code from the newest mail to `address`, new password: the page after the new password. */
async function reset(flow: Awaited<ReturnType<typeof forgotPage>>, name: string, address: string) {
  const codePage = await flow.browser.submit(flow.page, /\/forgot-password$/, { name });
  expect(codePage.status).toBe(200);
  const code = await resetCode(address);
  const newPage = await flow.browser.submit(codePage, '/forgot-password/code', { code });
  expect(textOf(newPage.html)).toContain('Choose a new password');
  return flow.browser.submit(newPage, '/forgot-password/new', { password: NEW_PASSWORD, confirm: NEW_PASSWORD });
}

async function newUser(options: { username?: string; verified?: string[] } = {}) {
  const email = `reset${++counter}@example.se`;
  const user = await nyckel.accounts.create({ email, username: options.username, password: TEST_PASSWORD, locale: 'en' });
  for (const extra of options.verified ?? []) await nyckel.accounts.addEmail(user, extra, { verified: true, maxAddresses: 3, actor: 'test' });
  return { email, user };
}

describe('"Forgot your password?"', () => {
  test('NYCKEL_PASSWORD_RESET=false: no link on the password page and no pages', async () => {
    const off = await startTestNyckel({ env: { NYCKEL_PASSWORD_RESET: 'false' } });
    try {
      const config = await relyingParty(off.url, 'spa');
      const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/spa-cb', ui_locales: 'en' });
      const browser = new FormBrowser(callbackStop);
      const login = await browser.go(start.url.toString());
      expect(login.status).toBe(200);
      expect(login.html).not.toContain('forgot-password');
      expect((await browser.go(`${login.url}/forgot-password`)).status).toBe(404);
    } finally {
      await off.stop();
    }
  });

  test('a user without a second factor: a code to every verified address, a new password, signed in; the old password and tokens end', async () => {
    const { email, user } = await newUser({ username: 'resetter-1', verified: ['home@example.se'] });
    // A refresh token from an earlier sign-in, to see it revoked by the reset.
    const config = await relyingParty(nyckel.url, 'spa');
    const earlier = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/spa-cb', scope: 'openid offline_access', prompt: 'consent' });
    const earlierBrowser = new FormBrowser(callbackStop);
    let page = await earlierBrowser.go(earlier.url.toString());
    page = await earlierBrowser.submit(page, '/login', { username: email, password: TEST_PASSWORD });
    const old = await tokensFrom(config, earlier, page);

    const flow = await forgotPage('spa');
    const done = await reset(flow, 'Resetter-1', email);
    await tokensFrom(flow.config, flow.start, done);
    // Both verified addresses got the same code.
    expect(await resetCode('home@example.se')).toBe(await resetCode(email));
    expect(await nyckel.accounts.verifyPassword(email, TEST_PASSWORD)).toBeNull();
    expect((await nyckel.accounts.verifyPassword('resetter-1', NEW_PASSWORD))?.id).toBe(user.id);
    await expect(oidc.refreshTokenGrant(config, old.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    const notice = await nyckel.db.prisma.delivery.findFirst({ where: { recipient: email, purpose: 'account-password-reset' } });
    expect(openDelivery(nyckel.db.prisma, notice!).text).toContain('was reset with a code sent by mail');
    const events = await nyckel.db.prisma.auditEvent.findMany({ where: { userId: user.id }, orderBy: { id: 'asc' } });
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['user.password_reset_requested', 'user.password_changed', 'user.password_reset']));
  });

  test('a name no account has gets the same pages, and nothing is mailed', async () => {
    await newUser({ username: 'known-resetter' });
    const a = await forgotPage('spa');
    const b = await forgotPage('spa');
    const knownPage = await a.browser.submit(a.page, /\/forgot-password$/, { name: 'known-resetter' });
    const unknownPage = await b.browser.submit(b.page, /\/forgot-password$/, { name: 'nobody-at-all' });
    expect([knownPage.status, unknownPage.status]).toEqual([200, 200]);
    const strip = (html: string) => textOf(html).replace(/known-resetter|nobody-at-all/g, 'NAME');
    expect(strip(unknownPage.html)).toBe(strip(knownPage.html));
    expect(await nyckel.db.prisma.delivery.count({ where: { purpose: 'password-reset', recipient: { contains: 'nobody' } } })).toBe(0);
    // Any code on the decoy is wrong, with the same words.
    const wrong = await b.browser.submit(unknownPage, '/forgot-password/code', { code: '123456' });
    expect(wrong.status).toBe(400);
    expect(textOf(wrong.html)).toContain('The code is not right');
  });

  test('a user with an authenticator app must pass it before the reset counts, even where the client asks for no second factor', async () => {
    const { email, user } = await newUser();
    const secret = await enrolApp(email);
    const flow = await forgotPage('spa');
    const atMfa = await reset(flow, email, email);
    expect(atMfa.url).toMatch(/\/mfa\/totp(\?send=1)?$/);
    // Mail proved the reset; it is no second factor now: the app is asked for, and email is not offered.
    expect(atMfa.html).not.toContain('/mfa/email-code');
    expect(await nyckel.accounts.verifyPassword(email, NEW_PASSWORD)).toBeNull();
    expect((await nyckel.accounts.verifyPassword(email, TEST_PASSWORD))?.id).toBe(user.id);
    const done = await flow.browser.submit(atMfa, '/verify', { code: await codeAt(secret, 1) });
    const tokens = await tokensFrom(flow.config, flow.start, done);
    expect(tokens.claims()?.amr).toEqual(expect.arrayContaining(['pwd', 'otp', 'mfa']));
    expect((await nyckel.accounts.verifyPassword(email, NEW_PASSWORD))?.id).toBe(user.id);
  });

  test('a wrong code is counted and locks; a spent code chooses no second password; parallel submits choose one', async () => {
    const { email } = await newUser();
    const flow = await forgotPage('spa');
    const codePage = await flow.browser.submit(flow.page, /\/forgot-password$/, { name: email });
    const right = await resetCode(email);
    const wrong = right === '000000' ? '111111' : '000000';
    const first = await flow.browser.submit(codePage, '/forgot-password/code', { code: wrong });
    expect(first.status).toBe(400);
    const newPage = await flow.browser.submit(first, '/forgot-password/code', { code: right });
    expect(newPage.status).toBe(200);
    const submits = await Promise.all(
      Array.from({ length: 4 }, () => flow.browser.submit(newPage, '/forgot-password/new', { password: NEW_PASSWORD, confirm: NEW_PASSWORD })),
    );
    const winners = submits.filter((p) => p.url.includes('code='));
    expect(winners).toHaveLength(1);
    // The others find the code spent (or the sign-in ended): a clear 4xx page, nothing set twice.
    expect(submits.filter((p) => !p.url.includes('code=')).map((p) => p.status >= 400 && p.status < 500)).toEqual([true, true, true]);
    expect((await nyckel.accounts.verifyPassword(email, NEW_PASSWORD))?.email).toBe(email);

    // Wrong codes lock the account's reset codes (3 failures here).
    const other = await newUser();
    const again = await forgotPage('spa');
    const page = await again.browser.submit(again.page, /\/forgot-password$/, { name: other.email });
    const freshRight = await resetCode(other.email);
    const bad = freshRight === '000000' ? '111111' : '000000';
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await again.browser.submit(page, '/forgot-password/code', { code: bad })).status);
    // The third wrong code locks: it says so, and then even the right code is refused for a while.
    expect(statuses).toEqual([400, 400, 429]);
    const locked = await again.browser.submit(page, '/forgot-password/code', { code: freshRight });
    expect(locked.status).toBe(429);
    expect(locked.headers.get('retry-after')).toMatch(/^\d+$/);
  });

  test('a new password is checked against the policy and the confirmation, and nothing is spent by a mistake', async () => {
    const { email } = await newUser();
    const flow = await forgotPage('spa');
    const codePage = await flow.browser.submit(flow.page, /\/forgot-password$/, { name: email });
    const newPage = await flow.browser.submit(codePage, '/forgot-password/code', { code: await resetCode(email) });
    const mismatch = await flow.browser.submit(newPage, '/forgot-password/new', { password: NEW_PASSWORD, confirm: 'something else entirely' });
    expect(mismatch.status).toBe(400);
    expect(textOf(mismatch.html)).toContain('The two new passwords are not the same');
    const common = await flow.browser.submit(mismatch, '/forgot-password/new', { password: 'password123', confirm: 'password123' });
    expect(common.status).toBe(400);
    const done = await flow.browser.submit(common, '/forgot-password/new', { password: NEW_PASSWORD, confirm: NEW_PASSWORD });
    await tokensFrom(flow.config, flow.start, done);
  });
});

/** Enrols an authenticator app for the user at the authapp client (its address is verified afterwards). */
async function enrolApp(email: string): Promise<string> {
  const user = await nyckel.accounts.requireByLogin(email);
  await nyckel.db.prisma.userEmail.updateMany({ where: { userId: user.id }, data: { verifiedAt: null } });
  const config = await relyingParty(nyckel.url, 'authapp');
  const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/authapp-cb', scope: 'openid email' });
  const browser = new FormBrowser(callbackStop);
  let page = await browser.go(start.url.toString());
  page = await browser.submit(page, '/login', { username: email, password: TEST_PASSWORD });
  const setup = await browser.submit(page, '/mfa/enrol/totp/start', {});
  const secret = secretIn(setup.html);
  const done = await browser.submit(setup, '/verify', { label: 'My phone', code: await codeAt(secret, -1) });
  await tokensFrom(config, start, await browser.submit(done, '/mfa/continue', {}));
  await nyckel.db.prisma.userEmail.updateMany({ where: { userId: user.id }, data: { verifiedAt: new Date() } });
  return secret;
}
