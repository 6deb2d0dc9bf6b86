import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import { resetSecondFactors } from '../../src/accounts/reset-factors.ts';
import { parseClientsFile } from '../../src/clients/clients-file.ts';
import { FormBrowser, textOf, type Page } from '../support/browser.ts';
import { codeIn, latestMail } from '../support/mail.ts';
import { startTestNyckel, TEST_PASSWORD, testClientsYaml, withAppOnlyClient, type TestNyckel } from '../support/nyckel.ts';
import { codeAt, secretIn } from '../support/otp.ts';
import { relyingParty, startAuthorization, type AuthorizationStart } from '../support/relying-party.ts';

// A [totp]-only service (TDC's "Authenticator app" portal), and an SMS-only one that names its help desk.
const clientsYaml = withAppOnlyClient(testClientsYaml).replace(
  'resources:',
  `  - client_id: helped
    name: Helped portal
    first_party: true
    token_endpoint_auth_method: none
    redirect_uris: [http://localhost:4000/helped-cb]
    scopes: [openid, email]
    support_contact: IT-support, 08-123 45 67
    mfa: { required: true, methods: [sms] }
resources:`,
);

let nyckel: TestNyckel;
let counter = 0;
const callbackStop = (url: URL) => url.port === '4000';

beforeAll(async () => {
  nyckel = await startTestNyckel({ clients: parseClientsFile(clientsYaml, 'clients.yaml') });
});
afterAll(() => nyckel?.stop());

async function passwordStep(clientId: string, email: string) {
  const config = await relyingParty(nyckel.url, clientId);
  const start = await startAuthorization(config, { redirect_uri: `http://localhost:4000/${clientId}-cb`, scope: 'openid email', ui_locales: 'en' });
  const browser = new FormBrowser(callbackStop);
  let page = await browser.go(start.url.toString());
  page = await browser.submit(page, '/login', { username: email, password: TEST_PASSWORD });
  return { config, start, browser, page };
}

async function tokensFrom(config: oidc.Configuration, start: AuthorizationStart, page: Page) {
  expect(page.url).toContain('code=');
  return oidc.authorizationCodeGrant(config, new URL(page.url), { pkceCodeVerifier: start.verifier, expectedState: start.state, expectedNonce: start.nonce });
}

describe('no dead ends', () => {
  test('a [totp]-only client and a user with only an address: an email code proves it is them, then an app is added, in the same sign-in', async () => {
    const email = `address-only${++counter}@example.se`;
    const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
    const { config, start, browser, page } = await passwordStep('apponly', email);
    expect(page.status).toBe(200);
    expect(textOf(page.html)).toContain('First confirm it is you with a method you have; then you can add one that App portal accepts');
    const uid = /\/interaction\/([^/]+)\//.exec(page.url)![1];
    const startPage = await browser.go(new URL(`/interaction/${uid}/mfa/email-code`, nyckel.url).toString());
    const target = /name="target"[^>]*value="([0-9a-f-]{36})"/.exec(startPage.html);
    const codePage = target ? await browser.submit(startPage, /\/mfa\/email-code\/start$/, { target: target[1] }) : startPage;
    const proved = await browser.submit(codePage, '/verify', { code: codeIn((await latestMail(nyckel.db.prisma, email)).text) });
    // The proof is no login at this client: it leads to adding the app.
    expect(proved.url).not.toContain('code=');
    expect(proved.url).toMatch(/\/mfa\/enrol$/);
    expect((await browser.go(new URL(`/interaction/${uid}/mfa/email-code`, nyckel.url).toString())).status).toBe(404);

    const setup = await browser.submit(proved, '/mfa/enrol/totp/start', {});
    const secret = secretIn(setup.html);
    const done = await browser.submit(setup, '/verify', { label: 'New phone', code: await codeAt(secret, 0) });
    const last = done.url.includes('code=') ? done : await browser.submit(done, '/mfa/continue', {});
    const tokens = await tokensFrom(config, start, last);
    expect(tokens.claims()).toMatchObject({ sub: user.id, acr: 'urn:nyckel:acr:mfa' });
    expect(tokens.claims()?.amr).toEqual(expect.arrayContaining(['otp']));
    expect(await nyckel.db.prisma.factorEnrolment.count({ where: { userId: user.id, type: 'totp', confirmed: true } })).toBe(1);
  });

  test('with nothing at all to prove it is them, the page says so and names the client’s support contact', async () => {
    const email = `nothing${++counter}@example.se`;
    const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
    await nyckel.db.prisma.userEmail.updateMany({ where: { userId: user.id }, data: { verifiedAt: null } });
    const { page } = await passwordStep('helped', email);
    expect(page.status).toBe(403);
    expect(textOf(page.html)).toContain('Helped portal requires a second step when you sign in, and your account has nothing to confirm it is you with yet');
    expect(textOf(page.html)).toContain('Contact IT-support, 08-123 45 67 to get one set up.');
  });

  test('after "Delete all my devices" a [totp]-only client leads to a proof and a new app, not to the administrator', async () => {
    const email = `panic${++counter}@example.se`;
    const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
    await nyckel.db.prisma.factorEnrolment.create({ data: { userId: user.id, type: 'totp', label: 'Lost phone', confirmed: true } });
    await resetSecondFactors(nyckel.db.prisma, nyckel.audit, user.id, { reason: 'Delete all my devices', actor: 'user' }, nyckel.accounts.revokeElsewhere);
    const { page } = await passwordStep('apponly', email);
    expect(page.status).toBe(200);
    expect(textOf(page.html)).toContain('First confirm it is you with a method you have');
    expect(page.html).toContain('/mfa/email-code');
  });

  test('the way to "Delete all my devices" is on the method choice of the account pages too', async () => {
    const email = `choice${++counter}@example.se`;
    const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
    await nyckel.db.prisma.factorEnrolment.create({ data: { userId: user.id, type: 'totp', label: 'Phone', confirmed: true } });
    const browser = new FormBrowser(callbackStop);
    let page = await browser.go(new URL('/account', nyckel.url).toString());
    page = await browser.submit(page, '/login', { username: email, password: TEST_PASSWORD });
    const uid = /\/interaction\/([^/]+)\//.exec(page.url)![1];
    const choice = await browser.go(new URL(`/interaction/${uid}/mfa?choose=1`, nyckel.url).toString());
    expect(textOf(choice.html)).toContain('Confirm it is you');
    expect(choice.html).toContain('href="/account/lost-device"');
  });
});
