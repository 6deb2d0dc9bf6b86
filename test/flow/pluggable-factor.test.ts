import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import { parseClientsFile } from '../../src/clients/clients-file.ts';
import { Factors, installedFactors } from '../../src/factors/registry.ts';
import { deskCodeDefinition } from '../support/desk-code/factor.ts';
import { FormBrowser, textOf, type Page } from '../support/browser.ts';
import { startTestNyckel, TEST_PASSWORD, testClientsYaml, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, startAuthorization } from '../support/relying-party.ts';

/**
 * The plug-in promise: a factor that exists only in the tests (test/support/desk-code: a folder with
 * its module, page side, strings and script) is added to a registry list and nothing else, and it
 * works through sign-in and policy like an installed one.
 */
const withDeskCode = new Factors([...installedFactors, deskCodeDefinition]);
const deskClients = `
  - client_id: desk
    name: Service portal
    first_party: true
    token_endpoint_auth_method: none
    redirect_uris: [http://localhost:4000/desk-cb]
    scopes: [openid, email]
    mfa: { required: true, methods: [desk-code, recovery-code] }
  - client_id: mailonly
    name: Mail portal
    first_party: true
    token_endpoint_auth_method: none
    redirect_uris: [http://localhost:4000/mailonly-cb]
    scopes: [openid, email]
    mfa: { required: true, methods: [email-code] }
`;
const clientsYaml = testClientsYaml.replace('\nresources:', `${deskClients.trimEnd()}\nresources:`);

let nyckel: TestNyckel;
let counter = 0;
const callbackStop = (url: URL) => url.port === '4000';

beforeAll(async () => {
  nyckel = await startTestNyckel({ factors: withDeskCode, clients: parseClientsFile(clientsYaml, 'desk-clients.yaml') });
});
afterAll(() => nyckel?.stop());

async function newUser() {
  const email = `desk${++counter}@service.example`;
  const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
  // No verified address: no other second factor to fall back on.
  await nyckel.db.prisma.userEmail.updateMany({ where: { userId: user.id }, data: { verifiedAt: null } });
  return { email, user };
}

async function passwordStep(email: string, client = 'desk') {
  const browser = new FormBrowser(callbackStop);
  const config = await relyingParty(nyckel.url, client);
  const start = await startAuthorization(config, { redirect_uri: `http://localhost:4000/${client}-cb`, scope: 'openid email' });
  const page = await browser.submit(await browser.go(start.url.toString()), '/login', { email, password: TEST_PASSWORD });
  return { browser, config, start, page };
}

async function tokensFrom(flow: Awaited<ReturnType<typeof passwordStep>>, page: Page) {
  expect(page.url).toContain('code=');
  return oidc.authorizationCodeGrant(flow.config, new URL(page.url), {
    pkceCodeVerifier: flow.start.verifier,
    expectedState: flow.start.state,
    expectedNonce: flow.start.nonce,
  });
}

/** Enrols a desk card during sign-in; returns the card's code and the tokens of that sign-in. */
async function enrolCard(email: string) {
  const flow = await passwordStep(email);
  expect(flow.page.url).toMatch(/\/mfa\/enrol$/);
  expect(textOf(flow.page.html)).toContain('Get a service desk card');
  const setup = await flow.browser.submit(flow.page, '/mfa/enrol/desk-code/start', {});
  expect(textOf(setup.html)).toContain('Your service desk card');
  const card = /(\d{4} \d{2})/.exec(textOf(setup.html))![1].replace(' ', '');
  const done = await flow.browser.submit(setup, '/verify', { code: card });
  // A card can be lost like a phone: recovery codes come with it (the policy's rule, not the factor's).
  expect(textOf(done.html)).toMatch(/recovery code/i);
  const tokens = await tokensFrom(flow, await flow.browser.submit(done, '/mfa/continue', {}));
  return { card, tokens };
}

describe('a factor that only the tests register', () => {
  test('is enrolled at sign-in from its own strings and signs in with acr mfa and its amr', async () => {
    const { email, user } = await newUser();
    const { tokens } = await enrolCard(email);
    expect(tokens.claims()).toMatchObject({ sub: user.id, acr: 'urn:nyckel:acr:mfa' });
    expect(tokens.claims()!.amr).toEqual(expect.arrayContaining(['pwd', 'hwk']));
  });

  test('the next sign-in goes straight to its code page; a wrong code is refused in its words, the right one signs in', async () => {
    const { email } = await newUser();
    const { card } = await enrolCard(email);
    const flow = await passwordStep(email);
    expect(flow.page.url).toMatch(/\/mfa\/desk-code(\?send=1)?$/);
    expect(textOf(flow.page.html)).toContain('Type the six-digit code on your service desk card.');
    const wrongCode = card === '123456' ? '654321' : '123456';
    const refused = await flow.browser.submit(flow.page, '/verify', { code: wrongCode });
    expect(refused.status).toBe(401);
    const tokens = await tokensFrom(flow, await flow.browser.submit(refused, '/verify', { code: card }));
    expect(tokens.claims()!.amr).toEqual(expect.arrayContaining(['pwd', 'hwk']));
  });

  test("the policy holds it to the client's methods: not offered where the client does not list it", async () => {
    const { email } = await newUser();
    await enrolCard(email);
    const flow = await passwordStep(email, 'mailonly');
    expect(flow.page.url).not.toContain('desk-code');
    const direct = await flow.browser.go(new URL(flow.page.url).toString().replace(/\/mfa.*$/, '/mfa/desk-code'));
    expect(direct.status).toBe(404);
  });

  test('the account pages offer it under "Add a method", add it on the generic setup page and list it; the next sign-in asks for it', async () => {
    const { email, user } = await newUser();
    const browser = new FormBrowser(callbackStop);
    const signedIn = await browser.submit(await browser.go(`${nyckel.url}/account`), '/login', { email, password: TEST_PASSWORD });
    expect(new URL(signedIn.url).pathname).toBe('/account');
    expect(textOf(signedIn.html)).toContain('Add a service desk card');
    const setup = await browser.submit(signedIn, '/account/add/desk-code', {});
    expect(setup.status).toBe(200);
    expect(new URL(setup.url).pathname).toMatch(/^\/account\/add\/desk-code\/[0-9a-f-]{36}$/);
    expect(textOf(setup.html)).toContain('Your service desk card');
    const card = /(\d{4} \d{2})/.exec(textOf(setup.html))![1].replace(' ', '');
    const malformed = await browser.submit(setup, '/verify', { code: 'abc', label: 'Front desk' });
    expect(malformed.status).toBe(400);
    const done = await browser.submit(malformed, '/verify', { code: card, label: 'Front desk' });
    expect(textOf(done.html)).toMatch(/recovery code/i);
    const overview = await browser.go(`${nyckel.url}/account`);
    expect(textOf(overview.html)).toContain('Service desk card');
    const added = await nyckel.db.prisma.auditEvent.findFirst({ where: { userId: user.id, type: 'account.method_added' } });
    expect(added?.data).toMatchObject({ factor: 'desk-code', label: 'Front desk' });
    const flow = await passwordStep(email);
    expect(flow.page.url).toMatch(/\/mfa\/desk-code(\?send=1)?$/);
  });

  test("the generic add route answers a factor it does not serve, or a setup that is not this user's, with a page, not a 500", async () => {
    const { email } = await newUser();
    const browser = new FormBrowser(callbackStop);
    const signedIn = await browser.submit(await browser.go(`${nyckel.url}/account`), '/login', { email, password: TEST_PASSWORD });
    expect(new URL(signedIn.url).pathname).toBe('/account');
    const csrf = /name="_csrf" value="([^"]+)"/.exec(signedIn.html)![1];
    const unknown = await browser.go(`${nyckel.url}/account/add/no-such-factor`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: csrf }).toString(),
    });
    expect(unknown.status).toBe(404);
    const notSetup = await browser.go(`${nyckel.url}/account/add/desk-code/00000000-0000-4000-8000-000000000000`);
    expect(notSetup.status).toBeGreaterThanOrEqual(400);
    expect(notSetup.status).toBeLessThan(500);
    const garbage = await browser.go(`${nyckel.url}/account/add/desk-code/not-a-uuid`);
    expect(garbage.status).toBeGreaterThanOrEqual(400);
    expect(garbage.status).toBeLessThan(500);
  });

  test('its script is served from its folder, and its strings are in every language', async () => {
    const script = await fetch(`${nyckel.url}/assets/desk-code.js`);
    expect(script.status).toBe(200);
    expect(await script.text()).toContain("dataset.deskCode = 'ready'");
    const { translator } = await import('../../src/i18n/i18n.ts');
    expect(translator('sv')('factors.desk-code.name')).toBe('Kort från servicedesken');
    expect(translator('da')('factors.desk-code.name')).toBe('Kort fra servicedesken');
  });

  test('a clients file naming a method no registered factor has is refused at start', async () => {
    await expect(startTestNyckel({ clients: parseClientsFile(clientsYaml, 'desk-clients.yaml') })).rejects.toThrow(
      /mfa\.methods\[0\]: unknown method desk-code/,
    );
  });
});
