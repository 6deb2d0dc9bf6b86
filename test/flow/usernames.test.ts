import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import { parseClientsFile } from '../../src/clients/clients-file.ts';
import { FormBrowser, textOf } from '../support/browser.ts';
import { startTestNyckel, TEST_PASSWORD, testClientsYaml, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, signInWithPassword, startAuthorization } from '../support/relying-party.ts';

// IDEP.WEB signs in with numbers such as 202100083755; its contact addresses are apart from the name.
const clientsYaml = testClientsYaml.replace(
  'resources:',
  `  - client_id: numbers
    name: Number portal
    first_party: true
    token_endpoint_auth_method: none
    redirect_uris: [http://localhost:4000/numbers-cb]
    scopes: [openid, profile, email]
    sign_in_name: username
resources:`,
);

let nyckel: TestNyckel;
let spa: oidc.Configuration;
let numbers: oidc.Configuration;
const callbackStop = (url: URL) => url.port === '4000';
const PER_ACCOUNT = 4;

beforeAll(async () => {
  nyckel = await startTestNyckel({
    env: { NYCKEL_LOGIN_FAILURES_PER_ACCOUNT: String(PER_ACCOUNT), NYCKEL_LOGIN_FAILURES_PER_IP: '100', NYCKEL_TRUST_PROXY: 'true' },
    clients: parseClientsFile(clientsYaml, 'test-clients.yaml'),
  });
  spa = await relyingParty(nyckel.url, 'spa');
  numbers = await relyingParty(nyckel.url, 'numbers');
});
afterAll(() => nyckel?.stop());

async function signIn(config: oidc.Configuration, redirectUri: string, name: string, password = TEST_PASSWORD) {
  const browser = new FormBrowser(callbackStop);
  const start = await startAuthorization(config, { redirect_uri: redirectUri, scope: 'openid profile email' });
  const { callback } = await signInWithPassword(browser, start, { email: name, password });
  return oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: start.verifier, expectedState: start.state, expectedNonce: start.nonce });
}

/** One password attempt on a fresh login page, posted as the page's own form (field `username`). */
async function attempt(config: oidc.Configuration, redirectUri: string, username: string, password: string, ip: string) {
  const browser = new FormBrowser(callbackStop);
  const start = await startAuthorization(config, { redirect_uri: redirectUri });
  const page = await browser.go(start.url.toString());
  return browser.submit(page, '/login', { username, password }, { headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': ip } });
}

describe('user names', () => {
  test('a user signs in with the user name in any case or width, or with the address; the ID token names the user', async () => {
    const user = await nyckel.accounts.create({ username: '202100083755', email: 'adam@example.se', password: TEST_PASSWORD });
    // Full-width digits are the same name after NFKC.
    const byName = await signIn(spa, 'http://localhost:4000/spa-cb', ' ２０２１０００８３７５５ ');
    expect(byName.claims()?.sub).toBe(user.id);
    expect(await oidc.fetchUserInfo(spa, byName.access_token, user.id)).toMatchObject({ preferred_username: '202100083755', email: 'adam@example.se' });
    const byAddress = await signIn(spa, 'http://localhost:4000/spa-cb', 'Adam@Example.se');
    expect(byAddress.claims()?.sub).toBe(user.id);
  });

  test('the login page says what it takes, per client', async () => {
    const browser = new FormBrowser(callbackStop);
    const either = await browser.go((await startAuthorization(spa, { redirect_uri: 'http://localhost:4000/spa-cb', ui_locales: 'sv' })).url.toString());
    expect(either.html).toMatch(/<label for="username">Användarnamn eller e-post<\/label>/);
    const onlyNames = await browser.go(
      (await startAuthorization(numbers, { redirect_uri: 'http://localhost:4000/numbers-cb', ui_locales: 'sv' })).url.toString(),
    );
    expect(onlyNames.html).toMatch(/<label for="username">Användarnamn<\/label>/);
    expect(onlyNames.html).toContain('type="text"');
  });

  test('a client that takes user names only refuses the address with the same answer as a wrong password', async () => {
    await nyckel.accounts.create({ username: 'eva.numbers', email: 'eva@example.se', password: TEST_PASSWORD });
    const byAddress = await attempt(numbers, 'http://localhost:4000/numbers-cb', 'eva@example.se', TEST_PASSWORD, '198.51.100.20');
    const wrong = await attempt(numbers, 'http://localhost:4000/numbers-cb', 'eva.numbers', 'not the password at all', '198.51.100.21');
    expect(byAddress.status).toBe(401);
    expect(wrong.status).toBe(401);
    const strip = (html: string) => textOf(html).replace(/eva@example\.se|eva\.numbers/g, 'NAME');
    expect(strip(byAddress.html)).toBe(strip(wrong.html));
    const byName = await attempt(numbers, 'http://localhost:4000/numbers-cb', 'EVA.NUMBERS', TEST_PASSWORD, '198.51.100.22');
    expect(byName.status).toBe(303);
  });

  test('a user with only a user name signs in, and gets an address later', async () => {
    const user = await nyckel.accounts.create({ username: 'only-a-name', password: TEST_PASSWORD });
    expect(user.email).toBeNull();
    const tokens = await signIn(spa, 'http://localhost:4000/spa-cb', 'only-a-name');
    const info = await oidc.fetchUserInfo(spa, tokens.access_token, user.id);
    expect(info).toMatchObject({ sub: user.id, preferred_username: 'only-a-name' });
    expect(info.email).toBeUndefined();
    await nyckel.accounts.addEmail(user, 'later@example.se', { verified: true, maxAddresses: 3, actor: 'test' });
    expect((await nyckel.accounts.emails(user.id)).map((row) => row.address)).toEqual(['later@example.se']);
  });

  test('unknown and wrong user names get the same answer', async () => {
    await nyckel.accounts.create({ username: 'known-name', password: TEST_PASSWORD });
    const wrong = await attempt(spa, 'http://localhost:4000/spa-cb', 'known-name', 'not the password at all', '198.51.100.30');
    const unknown = await attempt(spa, 'http://localhost:4000/spa-cb', 'unknown-name', 'not the password at all', '198.51.100.31');
    expect([wrong.status, unknown.status]).toEqual([401, 401]);
    const strip = (html: string) => textOf(html).replace(/known-name|unknown-name/g, 'NAME');
    expect(strip(unknown.html)).toBe(strip(wrong.html));
    expect(textOf(wrong.html)).toContain('The user name, email address or the password is not right');
  });

  test('failures by user name and by address count against one lock of the account', async () => {
    const user = await nyckel.accounts.create({ username: 'two-names', email: 'two.names@example.se', password: TEST_PASSWORD });
    for (let i = 0; i < PER_ACCOUNT; i++) {
      const typed = i % 2 === 0 ? 'Two-Names' : 'two.names@example.se';
      expect((await attempt(spa, 'http://localhost:4000/spa-cb', typed, `wrong-password-${i}`, `203.0.113.${i}`)).status).toBe(401);
    }
    for (const typed of ['two-names', 'TWO.NAMES@example.se']) {
      const blocked = await attempt(spa, 'http://localhost:4000/spa-cb', typed, TEST_PASSWORD, '203.0.113.99');
      expect(blocked.status).toBe(429);
    }
    // Someone else's name typed from the same addresses is not locked.
    await nyckel.accounts.create({ username: 'bystander-name', password: TEST_PASSWORD });
    expect((await attempt(spa, 'http://localhost:4000/spa-cb', 'bystander-name', TEST_PASSWORD, '203.0.113.1')).status).toBe(303);
    expect(user.username).toBe('two-names');
  });

  test('user names are unique whatever their case, and must not look like an address', async () => {
    await nyckel.accounts.create({ username: 'Unique.Name', password: TEST_PASSWORD });
    await expect(nyckel.accounts.create({ username: 'UNIQUE.name', password: TEST_PASSWORD })).rejects.toMatchObject({ code: 'conflict' });
    await expect(nyckel.accounts.create({ username: 'has@sign', password: TEST_PASSWORD })).rejects.toThrow(/must not contain/);
    await expect(nyckel.accounts.create({ password: TEST_PASSWORD })).rejects.toMatchObject({ code: 'invalid_input' });
    // Parallel creates of one name: exactly one wins, the others are the same clear conflict (the unique index decides).
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => nyckel.accounts.create({ username: 'raced-name', password: TEST_PASSWORD })));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results.filter((r) => r.status === 'rejected')) expect(r.reason).toMatchObject({ code: 'conflict' });
    // A password that is the user name is refused like one that is the address.
    await expect(nyckel.accounts.create({ username: 'longusername-42', password: 'LongUserName-42' })).rejects.toMatchObject({ code: 'invalid_input' });
  });
});
