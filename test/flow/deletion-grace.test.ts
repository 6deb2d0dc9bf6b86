// An account in the deletion grace period (the user asked to delete it, NYCKEL_ACCOUNT_DELETION_GRACE_DAYS)
// gets no session and no token by any road, and every road answers as for a disabled account or a name
// no account has: the password, "Forgot your password?", the account pages, a passkey instead of the
// password, the device flow, refresh tokens and sessions from before the request.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import type { User } from '../../src/generated/prisma/client.ts';
import { scheduleDeletion } from '../../src/accounts/erase.ts';
import { DEVICE_CODE_GRANT, parseClientsFile } from '../../src/clients/clients-file.ts';
import { FormBrowser, textOf, type Page } from '../support/browser.ts';
import { startTestNyckel, TEST_PASSWORD, testClientsYaml, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, signInWithPassword, startAuthorization } from '../support/relying-party.ts';
import { SoftAuthenticator } from '../support/soft-authenticator.ts';

const clientsYaml = testClientsYaml.replace(
  'resources:',
  `  - client_id: tv
    name: Living room TV
    first_party: true
    token_endpoint_auth_method: none
    grant_types: [${DEVICE_CODE_GRANT}, refresh_token]
    scopes: [openid, email, offline_access]
resources:`,
);

let nyckel: TestNyckel;
let counter = 0;
const callbackStop = (url: URL) => url.port === '4000';
const url = (path: string) => new URL(path, nyckel.url).toString();

beforeAll(async () => {
  nyckel = await startTestNyckel({
    clients: parseClientsFile(clientsYaml, 'grace-clients.yaml'),
    env: { NYCKEL_ACCOUNT_DELETION_GRACE_DAYS: '14', NYCKEL_CODE_RESEND_COOLDOWN: '0' },
  });
});
afterAll(() => nyckel?.stop());

async function newUser(options: { verified?: boolean } = {}) {
  const email = `grace${++counter}@grace.example`;
  const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
  if (options.verified === false) await nyckel.db.prisma.userEmail.updateMany({ where: { userId: user.id }, data: { verifiedAt: null } });
  return { email, user };
}

/** What "Delete my account" does when there is a grace period: disabled, due in 14 days, sessions and tokens ended. */
async function askToDelete(user: User) {
  const { prisma } = nyckel.db;
  const deps = { prisma, box: nyckel.box, audit: nyckel.audit, revokeElsewhere: nyckel.accounts.revokeElsewhere };
  await scheduleDeletion(deps, user.id, new Date(Date.now() + 14 * 86_400_000), { actor: 'user' });
  expect(await prisma.user.findUniqueOrThrow({ where: { id: user.id } })).toMatchObject({ status: 'disabled', deletionDueAt: expect.any(Date) });
}

/** A page's words with the name typed replaced, to compare the answers to different names. */
const wordsOf = (page: Page, name?: string) => ({ status: page.status, text: name ? textOf(page.html).replaceAll(name, 'NAME') : textOf(page.html) });

async function passwordAnswer(name: string, password = TEST_PASSWORD) {
  const config = await relyingParty(nyckel.url, 'spa');
  const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/spa-cb', ui_locales: 'en' });
  const browser = new FormBrowser(callbackStop);
  const login = await browser.go(start.url.toString());
  return { browser, login, answer: await browser.submit(login, '/login', { email: name, password }) };
}

describe('an account in the deletion grace period', () => {
  test('the right password is refused as a wrong one, as for a disabled account; the account pages take no sign-in', async () => {
    const closing = await newUser();
    await askToDelete(closing.user);
    const disabled = await newUser();
    await nyckel.accounts.setStatus(disabled.user, 'disabled', { actor: 'test' });
    const active = await newUser();

    const answers = [
      wordsOf((await passwordAnswer(closing.email)).answer, closing.email),
      wordsOf((await passwordAnswer(disabled.email)).answer, disabled.email),
      wordsOf((await passwordAnswer(active.email, 'not the password at all')).answer, active.email),
      wordsOf((await passwordAnswer('nobody@grace.example')).answer, 'nobody@grace.example'),
    ];
    expect(answers[0].status).toBe(401);
    for (const other of answers.slice(1)) expect(other).toEqual(answers[0]);

    // The account pages' own sign-in.
    const browser = new FormBrowser(callbackStop);
    const login = await browser.go(url('/account'));
    expect(login.url).toMatch(/\/interaction\//);
    const refused = await browser.submit(login, '/login', { email: closing.email, password: TEST_PASSWORD });
    expect(refused.status).toBe(401);
    expect((await browser.request(url('/account'))).status).toBe(303);
    expect(await nyckel.db.prisma.auditEvent.count({ where: { userId: closing.user.id, type: 'login.succeeded' } })).toBe(0);
  });

  test('"Forgot your password?" mails nothing and answers as for a name no account has', async () => {
    const closing = await newUser();
    await askToDelete(closing.user);
    const forgot = async (name: string) => {
      const { browser, login } = await passwordAnswer('nobody@grace.example');
      const link = /href="(\/interaction\/[^"]+\/forgot-password)"/.exec(login.html);
      expect(link).not.toBeNull();
      const page = await browser.go(url(link![1]));
      return wordsOf(await browser.submit(page, /\/forgot-password$/, { name }), name);
    };
    const closingAnswer = await forgot(closing.email);
    expect(closingAnswer.status).toBe(200);
    expect(closingAnswer).toEqual(await forgot('nobody-else@grace.example'));
    expect(await nyckel.db.prisma.delivery.count({ where: { recipient: closing.email, purpose: 'password-reset' } })).toBe(0);
  });

  test('tokens and sessions from before the request end: refresh token, userinfo, and the browser signs in again', async () => {
    const { email, user } = await newUser();
    const config = await relyingParty(nyckel.url, 'spa');
    const browser = new FormBrowser(callbackStop);
    const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/spa-cb', scope: 'openid offline_access', prompt: 'consent' });
    const { callback } = await signInWithPassword(browser, start, { email, password: TEST_PASSWORD });
    const tokens = await oidc.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: start.verifier,
      expectedState: start.state,
      expectedNonce: start.nonce,
    });
    expect(tokens.refresh_token).toBeTruthy();

    await askToDelete(user);
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(oidc.fetchUserInfo(config, tokens.access_token, user.id)).rejects.toBeTruthy();
    // The same browser: no silent sign-in, and a new authorization asks for the password.
    const silent = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/spa-cb', prompt: 'none' });
    const none = await browser.go(silent.url.toString());
    expect(new URL(none.url).searchParams.get('error')).toBe('login_required');
    const again = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/spa-cb' });
    expect((await browser.go(again.url.toString())).url).toMatch(/\/interaction\/[^/]+$/);
  });

  test('a passkey instead of the password is refused as an unknown passkey', async () => {
    const { email, user } = await newUser({ verified: false });
    const key = new SoftAuthenticator(nyckel.url, { userVerified: true });
    // The passkey, added at the key portal's sign-in (it asks for one).
    const keys = await relyingParty(nyckel.url, 'keys');
    const enrolStart = await startAuthorization(keys, { redirect_uri: 'http://localhost:4000/keys-cb', scope: 'openid email' });
    const enrolBrowser = new FormBrowser(callbackStop);
    const enrol = await enrolBrowser.submit(await enrolBrowser.go(enrolStart.url.toString()), '/login', { email, password: TEST_PASSWORD });
    expect(enrol.url).toMatch(/\/mfa\/enrol$/);
    const ceremony = await enrolBrowser.submit(enrol, '/mfa/enrol/passkey/start', {});
    const options = JSON.parse(/<script type="application\/json" data-passkey-options>([\s\S]*?)<\/script>/.exec(ceremony.html)![1]);
    const done = await enrolBrowser.submit(ceremony, /\/mfa\/enrol\/passkey\/challenge\/[0-9a-f-]{36}\/verify$/, {
      label: 'Key',
      credential: JSON.stringify(key.register(options)),
    });
    expect(textOf(done.html)).toContain('recovery');
    await askToDelete(user);

    const handle = Buffer.from(user.id.replace(/-/g, ''), 'hex').toString('base64url');
    const attempt = async (authenticator: SoftAuthenticator) => {
      const start = await startAuthorization(keys, { redirect_uri: 'http://localhost:4000/keys-cb', scope: 'openid email' });
      const browser = new FormBrowser(callbackStop);
      const login = await browser.go(start.url.toString());
      const page = await browser.go(url(/href="([^"]*\/passkey-login)"/.exec(login.html)![1]));
      const loginOptions = JSON.parse(/<script type="application\/json" data-passkey-options>([\s\S]*?)<\/script>/.exec(page.html)![1]);
      return wordsOf(
        await browser.submit(page, '/passkey-login', { credential: JSON.stringify(authenticator.authenticate(loginOptions, { userHandle: handle })) }),
      );
    };
    const refused = await attempt(key);
    expect(refused.status).toBe(401);
    expect(refused.text).toContain('That passkey could not be used to sign in.');
    expect(refused).toEqual(await attempt(new SoftAuthenticator(nyckel.url, { userVerified: true })));
    expect(
      await nyckel.db.prisma.auditEvent.count({ where: { userId: user.id, type: 'factor.verified', data: { path: ['passwordless'], equals: true } } }),
    ).toBe(0);
  });

  test('the device flow: a device signed in before the request gets no token, and no new device can be signed in', async () => {
    const { email, user } = await newUser();
    const tv = await relyingParty(nyckel.url, 'tv');
    const poll = (auth: oidc.DeviceAuthorizationResponse) =>
      oidc.pollDeviceAuthorizationGrant(tv, { ...auth, interval: 0 }, undefined, { signal: AbortSignal.timeout(5000) });
    const confirmOnPhone = async (browser: FormBrowser, userCode: string) => {
      const confirm = await browser.submit(await browser.go(url('/device')), '/device', { user_code: userCode });
      return browser.submit(confirm, '/device', { confirm: 'yes' });
    };
    // Signed in on the phone, then the user asks to delete the account before the TV polls.
    const phone = new FormBrowser();
    const before = await oidc.initiateDeviceAuthorization(tv, { scope: 'openid email offline_access' });
    const login = await confirmOnPhone(phone, before.user_code);
    const signedIn = await phone.submit(login, '/login', { username: email, password: TEST_PASSWORD });
    expect(textOf(signedIn.html)).toContain('You are signed in to Living room TV on the device.');
    await askToDelete(user);
    await expect(poll(before)).rejects.toMatchObject({ error: 'invalid_grant' });

    // A new code: the phone's session no longer counts, and the password is refused.
    const after = await oidc.initiateDeviceAuthorization(tv, { scope: 'openid email offline_access' });
    const again = await confirmOnPhone(phone, after.user_code);
    expect(again.url).toMatch(/\/interaction\/[^/]+$/);
    expect((await phone.submit(again, '/login', { username: email, password: TEST_PASSWORD })).status).toBe(401);
    await expect(
      fetch(url('/token'), {
        method: 'POST',
        body: new URLSearchParams({ grant_type: DEVICE_CODE_GRANT, device_code: after.device_code, client_id: 'tv' }),
      }).then((r) => r.json()),
    ).resolves.toMatchObject({ error: 'authorization_pending' });
  });
});
