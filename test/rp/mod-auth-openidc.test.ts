import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { parseClientsFile } from '../../src/clients/clients-file.ts';
import { newTotpSecret } from '../../src/factors/totp/otp.ts';
import { TOTP_SECRET_PURPOSE } from '../../src/factors/totp/index.ts';
import { decodeEntities, textOf, type Page } from '../support/browser.ts';
import { apacheOrigin, APT_INSTALL, missingApacheParts, NavigatingBrowser, openidcDirectives, startApache, type RunningApache } from '../support/apache.ts';
import { startTestNyckel, TEST_PASSWORD, testClientsYaml, type TestNyckel } from '../support/nyckel.ts';
import { codeAt } from '../support/otp.ts';
import { projectRoot } from '../support/process.ts';

// Apache's mod_auth_openidc (Debian's libapache2-mod-auth-openidc), a relying party written in C, in front
// of static pages. Three Apaches of one client: `recommended` with OIDCDefaultURL (the configuration
// docs/relying-parties-mod-auth-openidc.md shows), `bare` without it, `impatient` with it and a three-second
// OIDCStateTimeout (a sign-in slower than the module waits for).
const missing = missingApacheParts();
// Outside CI a machine without Apache skips this suite and says so; CI installs Apache (.ci/run), and
// there a missing Apache fails the suite (startApache throws) instead of passing it unseen.
const skipHere = missing.length > 0 && !process.env.CI;
if (skipHere) {
  console.warn(`mod-auth-openidc.test.ts skipped: ${missing.join(', ')} not installed; ${APT_INSTALL}. Under CI this fails instead.`);
}

const CLIENT_ID = 'apache';
const CLIENT_SECRET = 'apache-secret-apache-secret-01';
let nyckel: TestNyckel;
let recommended: RunningApache;
let bare: RunningApache;
let impatient: RunningApache;
let counter = 0;

/** The settings of the clients-file entry in docs/relying-parties-mod-auth-openidc.md, with every Apache's URLs. */
function withApacheClient(origins: string[]): string {
  const list = (suffix: string) => `[${origins.map((origin) => origin + suffix).join(', ')}]`;
  return testClientsYaml.replace(
    'resources:',
    `  - client_id: ${CLIENT_ID}
    name: Intranet (Apache)
    first_party: true
    token_endpoint_auth_method: client_secret_basic
    client_secret: ${CLIENT_SECRET}
    id_token_signed_response_alg: RS256
    redirect_uris: ${list('/protected/redirect_uri')}
    post_logout_redirect_uris: ${list('/signed-out.html')}
    scopes: [openid, email, profile, offline_access]
    mfa: { methods: [totp] }
resources:`,
  );
}

beforeAll(async () => {
  if (skipHere) return;
  const origins = { recommended: await apacheOrigin(), bare: await apacheOrigin(), impatient: await apacheOrigin() };
  // Access tokens of a minute, which `recommended` refreshes when less than 59 seconds are left.
  nyckel = await startTestNyckel({
    env: { NYCKEL_ACCESS_TOKEN_TTL: '60' },
    clients: parseClientsFile(withApacheClient(Object.values(origins)), 'test-clients.yaml'),
  });
  const client = { issuer: nyckel.url, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET };
  recommended = await startApache({ ...client, origin: origins.recommended, defaultUrl: `${origins.recommended}/index.html`, refreshBeforeExpirySeconds: 59 });
  bare = await startApache({ ...client, origin: origins.bare });
  impatient = await startApache({ ...client, origin: origins.impatient, defaultUrl: `${origins.impatient}/index.html`, stateTimeoutSeconds: 3 });
  // Nyckel and three Apaches on a busy machine: more than the 60 seconds of one test, so that afterAll
  // never runs while one of them is still starting (and would miss stopping it).
}, 120_000);
afterAll(async () => {
  await recommended?.stop();
  await bare?.stop();
  await impatient?.stop();
  await nyckel?.stop();
});

/** A user with an authenticator app (its secret returned, for the codes). */
async function newUser() {
  const email = `apache${++counter}@intranet.example`;
  const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
  const secret = newTotpSecret();
  const row = await nyckel.db.prisma.factorEnrolment.create({ data: { userId: user.id, type: 'totp', label: 'Phone', confirmed: true } });
  await nyckel.db.prisma.factorEnrolment.update({ where: { id: row.id }, data: { secret: Buffer.from(nyckel.box.seal(TOTP_SECRET_PURPOSE, secret, row.id)) } });
  return { email, user, secret };
}

/** The claims the protected page echoes; fails with Apache's log when the page is something else. */
function claimsOn(page: Page, apache: RunningApache): Record<string, string> {
  const claims = Object.fromEntries([...page.html.matchAll(/<dd id="([a-z]+)">([^<]*)<\/dd>/g)].map((m) => [m[1], m[2]]));
  if (!claims.email) throw new Error(`not the protected page (${page.status} ${page.url}):\n${textOf(page.html)}\n--- Apache:\n${apache.errorLog()}`);
  return claims;
}

const isLoginPage = (page: Page) => page.url.startsWith(nyckel.url) && page.html.includes('name="password"');

async function appCode(browser: NavigatingBrowser, page: Page, secret: string): Promise<Page> {
  expect(page.url).toMatch(/\/mfa\/totp(\?send=1)?$/);
  return browser.submit(page, '/verify', { code: await codeAt(secret, 0) });
}

(skipHere ? describe.skip : describe)('Apache mod_auth_openidc as relying party', () => {
  test('a page that needs a second factor: the password, then the app; the page shows email, acr and amr', async () => {
    const { email, secret } = await newUser();
    const browser = new NavigatingBrowser();
    let page = await browser.go(`${recommended.origin}/protected/mfa/index.shtml`);
    expect(isLoginPage(page)).toBe(true);
    page = await browser.submit(page, '/login', { email, password: TEST_PASSWORD });
    page = await appCode(browser, page, secret);
    expect(page.url).toBe(`${recommended.origin}/protected/mfa/index.shtml`);
    expect(claimsOn(page, recommended)).toMatchObject({ email, acr: 'urn:nyckel:acr:mfa', amr: 'pwd,otp,mfa', user: expect.stringMatching(/.+/) });
  });

  test('step-up: signed in with the password alone, the second-factor part sends the user back for the app only', async () => {
    const { email, secret } = await newUser();
    const browser = new NavigatingBrowser();
    let page = await browser.go(`${recommended.origin}/protected/index.shtml`);
    page = await browser.submit(page, '/login', { email, password: TEST_PASSWORD });
    expect(claimsOn(page, recommended)).toMatchObject({ email, acr: 'urn:nyckel:acr:password', amr: 'pwd' });

    page = await browser.go(`${recommended.origin}/protected/mfa/index.shtml`);
    // Apache's authorization phase cannot redirect: mod_auth_openidc sends a page that refreshes to Nyckel.
    expect(textOf(page.html)).toContain('Stepup Authentication');
    const refresh = /<meta http-equiv="refresh" content="0; url=([^"]+)">/.exec(page.html)![1];
    expect(new URL(decodeEntities(refresh)).searchParams.get('acr_values')).toBe('urn:nyckel:acr:mfa');
    page = await browser.go(decodeEntities(refresh));
    expect(isLoginPage(page)).toBe(false);
    page = await appCode(browser, page, secret);
    expect(claimsOn(page, recommended)).toMatchObject({ email, acr: 'urn:nyckel:acr:mfa', amr: 'pwd,otp,mfa' });
  });

  test('logout through <redirect_uri>?logout=: Nyckel ends its session too and sends the user back', async () => {
    const { email } = await newUser();
    const browser = new NavigatingBrowser();
    let page = await browser.go(`${recommended.origin}/protected/index.shtml`);
    page = await browser.submit(page, '/login', { email, password: TEST_PASSWORD });
    expect(claimsOn(page, recommended).email).toBe(email);

    const signedOut = `${recommended.origin}/signed-out.html`;
    const confirm = await browser.go(`${recommended.origin}/protected/redirect_uri?logout=${encodeURIComponent(signedOut)}`);
    expect(confirm.url).toMatch(new RegExp(`^${nyckel.url}/session/end`));
    page = await browser.submit(confirm, /\/session\/end\/confirm$/, { logout: 'yes' });
    expect([page.url, page.status]).toEqual([signedOut, 200]);
    expect(page.html).toContain('You have signed out');

    // Neither Apache's session nor Nyckel's is left: the protected page asks for the password again.
    expect(isLoginPage(await browser.go(`${recommended.origin}/protected/index.shtml`))).toBe(true);
  });

  test('refresh: the access token is renewed before it expires; once Nyckel revokes the grant, the Apache session ends', async () => {
    const { email, user } = await newUser();
    const browser = new NavigatingBrowser();
    const protectedPage = `${recommended.origin}/protected/index.shtml`;
    const login = await browser.go(protectedPage);
    const first = Number(claimsOn(await browser.submit(login, '/login', { email, password: TEST_PASSWORD }), recommended).expires);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(Number(claimsOn(await browser.go(protectedPage), recommended).expires)).toBeGreaterThan(first);

    await nyckel.accounts.setStatus(user, 'disabled');
    await new Promise((resolve) => setTimeout(resolve, 2_000)); // the next refresh due
    const refused = await browser.go(protectedPage);
    // The refresh fails, and logout_on_error ends the session: the module's "Logged Out" page.
    expect([refused.status, textOf(refused.html)]).toEqual([200, 'Logged Out Logged Out']);
    expect(isLoginPage(await browser.go(protectedPage))).toBe(true);
  });
});

(skipHere ? describe.skip : describe)('errors from Nyckel at mod_auth_openidc, with and without OIDCDefaultURL', () => {
  async function cancelledAt(apache: RunningApache) {
    const browser = new NavigatingBrowser();
    const login = await browser.go(`${apache.origin}/protected/index.shtml`);
    expect(isLoginPage(login)).toBe(true);
    return { browser, page: await browser.submit(login, '/abort', {}) };
  }

  // Nyckel's answers carry `iss` (RFC 9207). mod_auth_openidc 2.4.12 takes a redirect_uri request with
  // `iss` and no `code` for the answer of its discovery page (a login started elsewhere), before it looks
  // for `error`: the error never reaches its error page.
  test('the user cancels, without OIDCDefaultURL: a module error about a missing target_link_uri, not the cancel', async () => {
    const { page } = await cancelledAt(bare);
    const answer = new URL(page.url);
    expect(`${answer.origin}${answer.pathname}`).toBe(`${bare.origin}/protected/redirect_uri`);
    expect(Object.fromEntries(answer.searchParams)).toMatchObject({ error: 'access_denied', iss: nyckel.url, state: expect.any(String) });
    expect(page.status).toBe(200); // the module sends its error page as a 200
    expect(textOf(page.html)).toContain(
      'SSO to this module without specifying a "target_link_uri" parameter is not possible because OIDCDefaultURL is not set',
    );
    expect(textOf(page.html)).not.toContain('access_denied');
  });

  test('the user cancels, with OIDCDefaultURL: a new sign-in at Nyckel, which leads to the default URL', async () => {
    const { email } = await newUser();
    const { browser, page } = await cancelledAt(recommended);
    expect(isLoginPage(page)).toBe(true);
    const home = await browser.submit(page, '/login', { email, password: TEST_PASSWORD });
    expect([home.url, home.status]).toEqual([`${recommended.origin}/index.html`, 200]);
    expect(home.html).toContain('Apache home page');
  });

  test.each([
    ['without OIDCDefaultURL: a bare 400', () => bare, 400, 'Bad Request'],
    ['with OIDCDefaultURL: the default URL', () => recommended, 200, 'Apache home page'],
  ])('an answer whose state cookie is gone (another browser, a lost cookie) %s', async (_name, apache, status, text) => {
    const { email } = await newUser();
    const callback = `${apache().origin}/protected/redirect_uri`;
    const browser = new NavigatingBrowser((url) => url.toString().startsWith(callback));
    const login = await browser.go(`${apache().origin}/protected/index.shtml`);
    const answer = await browser.submit(login, '/login', { email, password: TEST_PASSWORD });
    expect(answer.url).toMatch(/\?code=/);
    const page = await new NavigatingBrowser().go(answer.url);
    expect(page.status).toBe(status);
    expect(textOf(page.html)).toContain(text);
  });

  test('a sign-in slower than OIDCStateTimeout, with OIDCDefaultURL: the default URL, from where the user gets in without signing in again', async () => {
    const { email } = await newUser();
    const callback = `${impatient.origin}/protected/redirect_uri`;
    let slow = true;
    const browser = new NavigatingBrowser((url) => slow && url.toString().startsWith(callback));
    const login = await browser.go(`${impatient.origin}/protected/index.shtml`);
    const answer = await browser.submit(login, '/login', { email, password: TEST_PASSWORD });
    // Longer than the 3 s OIDCStateTimeout, which the one round trip at the end stays well within.
    await new Promise((resolve) => setTimeout(resolve, 3_500));
    slow = false;
    const home = await browser.go(answer.url);
    expect([home.url, home.status]).toEqual([`${impatient.origin}/index.html`, 200]);
    expect(home.html).toContain('Apache home page');
    // Nyckel's session is there: the protected page is one round trip away, without the password.
    expect(claimsOn(await browser.go(`${impatient.origin}/protected/index.shtml`), impatient).email).toBe(email);
  });
});

describe('docs/relying-parties-mod-auth-openidc.md', () => {
  const doc = fs.readFileSync(path.join(projectRoot, 'docs/relying-parties-mod-auth-openidc.md'), 'utf8');
  const block = (language: string) => new RegExp('```' + language + '\\n([\\s\\S]*?)```').exec(doc)![1];

  test('shows the Apache configuration this suite runs, with its own names and URLs', () => {
    const example = {
      origin: 'https://intranet.example.org',
      issuer: 'https://id.example.org',
      clientId: 'intranet',
      clientSecret: '${INTRANET_CLIENT_SECRET}',
      defaultUrl: 'https://intranet.example.org/',
      refreshBeforeExpirySeconds: 300,
    };
    expect(block('apache')).toBe(openidcDirectives(example, '${OIDC_CRYPTO_PASSPHRASE}'));
  });

  test('shows a clients-file entry Nyckel accepts', () => {
    const [client] = parseClientsFile(block('yaml'), 'docs.yaml').clients;
    expect(client).toMatchObject({ client_id: 'intranet', token_endpoint_auth_method: 'client_secret_basic', id_token_signed_response_alg: 'RS256' });
  });
});
