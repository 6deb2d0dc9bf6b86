import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import { parseClientsFile } from '../../src/clients/clients-file.ts';
import { replaceRecoveryCodes } from '../../src/factors/recovery-code/index.ts';
import { FormBrowser, textOf, type Page } from '../support/browser.ts';
import { codeIn, latestMail } from '../support/mail.ts';
import { startTestNyckel, TEST_PASSWORD, testClientsYaml, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, startAuthorization, type AuthorizationStart } from '../support/relying-party.ts';

let nyckel: TestNyckel;
let counter = 0;
const callbackStop = (url: URL) => url.port === '4000';

beforeAll(async () => {
  const clients = parseClientsFile(
    testClientsYaml.replace(
      'resources:',
      `  - client_id: tdc
    name: TDC Erhverv
    first_party: true
    token_endpoint_auth_method: none
    redirect_uris: [http://localhost:4000/tdc-cb]
    scopes: [openid, email]
    mfa: { required: true, methods: [totp], forgot_device_email: true }
  - client_id: tdc-mail
    name: TDC Mail
    first_party: true
    token_endpoint_auth_method: none
    redirect_uris: [http://localhost:4000/tdc-mail-cb]
    scopes: [openid, email]
    mfa: { required: true, methods: [totp, email-code], forgot_device_email: true }
  - client_id: strict
    name: Strict portal
    first_party: true
    token_endpoint_auth_method: none
    redirect_uris: [http://localhost:4000/strict-cb]
    scopes: [openid, email]
    mfa: { required: true, methods: [totp], recovery_codes_fallback: false }
resources:`,
    ),
    'clients.yaml',
  );
  nyckel = await startTestNyckel({ clients });
});
afterAll(() => nyckel?.stop());

/** A user with an authenticator app (the device) and a verified address. */
async function userWithApp() {
  const email = `forgot${++counter}@tdc.example`;
  const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
  await nyckel.db.prisma.factorEnrolment.create({ data: { userId: user.id, type: 'totp', label: 'Phone', confirmed: true } });
  return { email, user };
}

async function passwordStep(clientId: string, email: string, params: Record<string, string> = {}, browser = new FormBrowser(callbackStop)) {
  const config = await relyingParty(nyckel.url, clientId);
  const start = await startAuthorization(config, { redirect_uri: `http://localhost:4000/${clientId}-cb`, scope: 'openid email', ...params });
  let page = await browser.go(start.url.toString());
  if (page.html.includes('name="password"')) page = await browser.submit(page, '/login', { email, password: TEST_PASSWORD });
  return { config, start, browser, page };
}

async function tokensFrom(config: oidc.Configuration, start: AuthorizationStart, page: Page) {
  expect(page.url).toContain('code=');
  return oidc.authorizationCodeGrant(config, new URL(page.url), { pkceCodeVerifier: start.verifier, expectedState: start.state, expectedNonce: start.nonce });
}

describe('"Forgot your device?"', () => {
  test('an email code stands in for the app: the login says so (acr mfa-fallback), is audited and mailed, and points to the account page', async () => {
    const { email, user } = await userWithApp();
    const { config, start, browser, page } = await passwordStep('tdc', email);
    expect(page.url).toMatch(/\/mfa\/totp(\?send=1)?$/);
    expect(textOf(page.html)).toContain('Forgot your device?');

    const choice = await browser.go(new URL(/href="([^"]*\/mfa\/forgot)"/.exec(page.html)![1], nyckel.url).toString());
    expect(choice.status).toBe(200);
    expect(textOf(choice.html)).toContain('with a code sent to your email address instead');
    const target = /name="target"[^>]*value="([0-9a-f-]{36})"/.exec(choice.html)![1];
    let codePage = await browser.submit(choice, '/mfa/forgot/start', { target });
    expect(codePage.url).toMatch(/\/mfa\/forgot\/challenge\/[0-9a-f-]{36}$/);
    const code = codeIn((await latestMail(nyckel.db.prisma, email)).text);
    codePage = await browser.submit(codePage, '/verify', { code: code === '000000' ? '111111' : '000000' });
    expect(codePage.status).toBe(401);

    const notice = await browser.submit(codePage, '/verify', { code });
    expect(notice.status).toBe(200);
    expect(textOf(notice.html)).toContain('Set up a new sign-in method');
    expect(notice.html).toContain('href="/account"');
    const tokens = await tokensFrom(config, start, await browser.submit(notice, '/mfa/continue', {}));
    expect(tokens.claims()).toMatchObject({ sub: user.id, acr: 'urn:nyckel:acr:mfa-fallback', amr: ['pwd', 'otp', 'mfa'] });

    const events = (await nyckel.db.prisma.auditEvent.findMany({ where: { userId: user.id } })).map((e) => e.type);
    expect(events).toEqual(expect.arrayContaining(['factor.fallback_used', 'login.succeeded']));
    const mail = await latestMail(nyckel.db.prisma, email);
    expect(mail.text).toContain('because the device was forgotten');

    // The session satisfies the client's own policy (no loop back to the second step)…
    const again = await passwordStep('tdc', email, { prompt: 'none' }, browser);
    expect((await tokensFrom(again.config, again.start, again.page)).claims()!.acr).toBe('urn:nyckel:acr:mfa-fallback');
    // …but never a step-up that asks for the second factor itself.
    const stepUp = await passwordStep('tdc', email, { acr_values: 'urn:nyckel:acr:mfa' }, browser);
    expect(stepUp.page.url).toMatch(/\/interaction\//);
    expect(stepUp.page.url).not.toContain('code=');
  });

  test('a client that does not allow it has no such link and no such page', async () => {
    const { email } = await userWithApp();
    const { page, browser } = await passwordStep('authapp', email);
    // The primary method (the app) at once: no link there, nor among the other methods.
    expect(page.url).toMatch(/\/mfa\/totp(\?send=1)?$/);
    expect(textOf(page.html)).not.toContain('Forgot your device?');
    const uid = /\/interaction\/([^/]+)\//.exec(page.url)![1];
    const choose = await browser.go(new URL(`/interaction/${uid}/mfa?choose=1`, nyckel.url).toString());
    expect(textOf(choose.html)).toContain('Confirm it is you');
    expect(textOf(choose.html)).not.toContain('Forgot your device?');
    const refused = await browser.go(new URL(`/interaction/${uid}/mfa/forgot`, nyckel.url).toString());
    expect(refused.status).toBe(404);
  });

  test('a step-up asking for the second-factor class is not offered the fallback, which could never satisfy it', async () => {
    const { email } = await userWithApp();
    const { page, browser } = await passwordStep('tdc', email, { acr_values: 'urn:nyckel:acr:mfa' });
    expect(page.url).toMatch(/\/mfa\/totp(\?send=1)?$/);
    expect(textOf(page.html)).not.toContain('Forgot your device?');
    const uid = /\/interaction\/([^/]+)\//.exec(page.url)![1];
    expect((await browser.go(new URL(`/interaction/${uid}/mfa/forgot`, nyckel.url).toString())).status).toBe(404);
  });

  test("it is offered where it helps: on the app's page, not on the email-code page (it would send the same code)", async () => {
    const { email } = await userWithApp();
    const { page, browser } = await passwordStep('tdc-mail', email);
    const uid = /\/interaction\/([^/]+)\//.exec(page.url)![1];
    const appPage = await browser.go(new URL(`/interaction/${uid}/mfa/totp`, nyckel.url).toString());
    expect(appPage.url).toMatch(/\/mfa\/totp(\?send=1)?$/);
    expect(textOf(appPage.html)).toContain('Forgot your device?');
    const emailPage = await browser.go(new URL(`/interaction/${uid}/mfa/email-code`, nyckel.url).toString());
    expect(emailPage.status).toBe(200);
    expect(textOf(emailPage.html)).not.toContain('Forgot your device?');
  });

  test('recovery codes stand in for the app at a [totp]-only client, unless the client opts out', async () => {
    const { email, user } = await userWithApp();
    const codes = await nyckel.db.prisma.$transaction((tx) => replaceRecoveryCodes(tx, nyckel.box, user.id, 3));
    const { config, start, browser, page } = await passwordStep('tdc', email);
    const uid = /\/interaction\/([^/]+)\//.exec(page.url)![1];
    const choice = await browser.go(new URL(`/interaction/${uid}/mfa?choose=1`, nyckel.url).toString());
    expect(choice.html).toContain(`/interaction/${uid}/mfa/recovery-code`);
    const codePage = await browser.go(new URL(`/interaction/${uid}/mfa/recovery-code`, nyckel.url).toString());
    expect(codePage.url).toMatch(/\/mfa\/recovery-code(\?send=1)?$/);
    const accepted = await browser.submit(codePage, '/verify', { code: codes[0] });
    expect(textOf(accepted.html)).toContain('You used a recovery code. You have 2 left.');
    const tokens = await tokensFrom(config, start, await browser.submit(accepted, '/mfa/continue', {}));
    expect(tokens.claims()?.acr).toBe('urn:nyckel:acr:mfa');

    const strict = await passwordStep('strict', email);
    const strictUid = /\/interaction\/([^/]+)\//.exec(strict.page.url)![1];
    expect((await strict.browser.go(new URL(`/interaction/${strictUid}/mfa/recovery-code`, nyckel.url).toString())).status).toBe(404);
  });

  test('a used or wrong code, a foreign target and garbage are refused without a 500', async () => {
    const { email } = await userWithApp();
    const { browser, page } = await passwordStep('tdc', email);
    const uid = /\/interaction\/([^/]+)\//.exec(page.url)![1];
    const choice = await browser.go(new URL(`/interaction/${uid}/mfa/forgot`, nyckel.url).toString());
    const foreign = await browser.submit(choice, '/mfa/forgot/start', { target: '00000000-0000-0000-0000-000000000000' });
    expect(foreign.status).toBe(400);
    const garbage = await browser.submit(choice, '/mfa/forgot/start', { target: 'x'.repeat(100) });
    expect(garbage.status).toBe(400);
    const badChallenge = await browser.go(new URL(`/interaction/${uid}/mfa/forgot/challenge/not-a-uuid`, nyckel.url).toString());
    expect(badChallenge.status).toBe(400);
    const codePage = await browser.submit(choice, '/mfa/forgot/start', { target: /name="target"[^>]*value="([0-9a-f-]{36})"/.exec(choice.html)![1] });
    const letters = await browser.submit(codePage, '/verify', { code: 'abcdef' });
    expect(letters.status).toBe(400);
  });
});
