import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import express from 'express';
import { parseClientsFile } from '../../src/clients/clients-file.ts';
import { acr } from '../../src/factors/acr.ts';
import { TOTP_SECRET_PURPOSE } from '../../src/factors/totp/index.ts';
import { newTotpSecret } from '../../src/factors/totp/otp.ts';
import { FormBrowser, type Page } from '../support/browser.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { codeAt } from '../support/otp.ts';
import { jsonOf, listeningApp, signInOnNyckel, type RelyingPartyApp } from '../support/rp-apps.ts';

/**
 * express-openid-connect (Auth0's middleware for express) as the relying party of two real express
 * apps, configured as docs/relying-parties.md says: one whose client requires a second factor, one
 * that asks for it by step-up.
 */
let nyckel: TestNyckel;
let portal: RelyingPartyApp;
let reports: RelyingPartyApp;
let counter = 0;
/**
 * Loaded in beforeAll: the package is CommonJS and require()s openid-client, an ES module this suite's
 * static imports are still linking; jest refuses that require as a cycle. Imported later, it is not one.
 */
let eoc: typeof import('express-openid-connect');

/** The clients-file entries of docs/relying-parties.md ("express-openid-connect"), at the apps' URLs. */
function clientsYaml(portalUrl: string, reportsUrl: string): string {
  return `
clients:
  - client_id: portal
    name: Staff portal
    first_party: true
    redirect_uris: [${portalUrl}/callback]
    post_logout_redirect_uris: [${portalUrl}/bye]
    token_endpoint_auth_method: client_secret_basic
    client_secret: portal-secret-portal-secret-01
    scopes: [openid, profile, email, offline_access]
    mfa: { required: true, methods: [totp] }
  - client_id: reports
    name: Reports
    first_party: true
    redirect_uris: [${reportsUrl}/callback]
    post_logout_redirect_uris: [${reportsUrl}/bye]
    token_endpoint_auth_method: client_secret_basic
    client_secret: reports-secret-reports-secret-1
    scopes: [openid, profile, email, offline_access]
    mfa: { methods: [totp] }
`;
}

/** The app: the middleware as the guide configures it, and routes that show what the app sees. */
function expressOidcApp(app: RelyingPartyApp, clientID: string, clientSecret: string) {
  const router = express.Router();
  router.use(
    eoc.auth({
      issuerBaseURL: nyckel.url,
      baseURL: app.url,
      clientID,
      clientSecret,
      secret: 'a-long-random-cookie-secret-for-the-app-0001',
      authRequired: false,
      idpLogout: true,
      routes: { postLogoutRedirect: '/bye' },
      authorizationParams: { response_type: 'code', scope: 'openid profile email offline_access' },
    }),
  );
  router.get('/', (req, res) => void res.json({ authenticated: req.oidc.isAuthenticated() }));
  router.get('/profile', eoc.requiresAuth(), async (req, res) => {
    res.json({ user: req.oidc.user, claims: req.oidc.idTokenClaims, userinfo: await req.oidc.fetchUserInfo(), hasRefreshToken: !!req.oidc.refreshToken });
  });
  router.get('/refresh', eoc.requiresAuth(), async (req, res) => {
    const before = req.oidc.accessToken!;
    const after = await before.refresh();
    res.json({ before: before.access_token, after: after.access_token });
  });
  router.get('/step-up', (_req, res) => res.oidc.login({ returnTo: '/profile', authorizationParams: { acr_values: acr.mfa } }));
  router.get('/step-up-by-claim', (_req, res) =>
    res.oidc.login({
      returnTo: '/profile',
      authorizationParams: { claims: JSON.stringify({ id_token: { acr: { essential: true, values: [acr.mfa] } } }) },
    }),
  );
  router.get('/bye', (req, res) => void res.json({ signedOut: !req.oidc.isAuthenticated() }));
  app.mount(router);
}

beforeAll(async () => {
  eoc = await import('express-openid-connect');
  portal = await listeningApp();
  reports = await listeningApp();
  nyckel = await startTestNyckel({ clients: parseClientsFile(clientsYaml(portal.url, reports.url), 'rp-clients.yaml') });
  expressOidcApp(portal, 'portal', 'portal-secret-portal-secret-01');
  expressOidcApp(reports, 'reports', 'reports-secret-reports-secret-1');
});
afterAll(async () => {
  await portal?.close();
  await reports?.close();
  await nyckel?.stop();
});

/** A user with a password and an authenticator app. */
async function userWithApp() {
  const email = `express.oidc${++counter}@example.test`;
  const user = await nyckel.accounts.create({ email, name: 'Ada Lindqvist', password: TEST_PASSWORD, locale: 'en' });
  const secret = newTotpSecret();
  const row = await nyckel.db.prisma.factorEnrolment.create({ data: { userId: user.id, type: 'totp', label: 'Phone', confirmed: true } });
  await nyckel.db.prisma.factorEnrolment.update({ where: { id: row.id }, data: { secret: Buffer.from(nyckel.box.seal(TOTP_SECRET_PURPOSE, secret, row.id)) } });
  return { email, secret };
}

/** On Nyckel's authenticator-app page (the client's method, offered at once): a code, then back to the app. */
async function appCode(browser: FormBrowser, page: Page, secret: string, step: number): Promise<Page> {
  expect(page.url).toMatch(/\/mfa\/totp\/challenge\/app$/);
  return browser.submit(page, '/verify', { code: await codeAt(secret, step) });
}

interface Profile {
  user: Record<string, unknown>;
  claims: Record<string, unknown>;
  userinfo: Record<string, unknown>;
  hasRefreshToken: boolean;
}

describe('express-openid-connect', () => {
  test('signs in with password and app code, reads the claims and userinfo, refreshes the access token, logs out at Nyckel', async () => {
    const { email, secret } = await userWithApp();
    const browser = new FormBrowser();
    const login = await browser.go(`${portal.url}/login`);
    expect(login.url.startsWith(nyckel.url)).toBe(true);
    const back = await appCode(browser, await signInOnNyckel(browser, login, email), secret, 0);
    expect(jsonOf(back)).toEqual({ authenticated: true });

    const profile = jsonOf<Profile>(await browser.go(`${portal.url}/profile`));
    expect(profile.claims).toMatchObject({ iss: nyckel.url, aud: 'portal', acr: acr.mfa, amr: ['pwd', 'otp', 'mfa'] });
    expect(profile.user.sub).toBe(profile.claims.sub);
    // Profile claims come from userinfo (OIDC Core: the ID token has them only when no access token is issued).
    expect(profile.userinfo).toMatchObject({ sub: profile.claims.sub, email, email_verified: true, name: 'Ada Lindqvist' });
    expect(profile.hasRefreshToken).toBe(true);

    const refreshed = jsonOf<{ before: string; after: string }>(await browser.go(`${portal.url}/refresh`));
    expect(refreshed.after).toEqual(expect.any(String));
    expect(refreshed.after).not.toBe(refreshed.before);

    // /logout: the app forgets its session and sends the browser to Nyckel's end_session with the ID token as hint.
    const confirm = await browser.go(`${portal.url}/logout`);
    expect(confirm.url).toMatch(new RegExp(`^${nyckel.url}/session/end\\?`));
    const endSession = new URL(confirm.url).searchParams;
    expect(endSession.get('id_token_hint')).toEqual(expect.any(String));
    expect(endSession.get('post_logout_redirect_uri')).toBe(`${portal.url}/bye`);
    const bye = await browser.submit(confirm, /\/session\/end\/confirm$/, { logout: 'yes' });
    expect(bye.url).toBe(`${portal.url}/bye`);
    expect(jsonOf(bye)).toEqual({ signedOut: true });
    // Nyckel's session ended too: the next /login asks for the password again.
    expect((await browser.go(`${portal.url}/login`)).html).toContain('name="password"');
  });

  test('steps up from a password-only sign-in by acr_values, and by an essential acr claim', async () => {
    const { email, secret } = await userWithApp();
    const browser = new FormBrowser();
    await signInOnNyckel(browser, await browser.go(`${reports.url}/login`), email);
    const passwordOnly = jsonOf<Profile>(await browser.go(`${reports.url}/profile`));
    expect(passwordOnly.claims).toMatchObject({ acr: acr.password, amr: ['pwd'] });

    // Inside the same Nyckel session: no password, only the second factor.
    const stepUp = await browser.go(`${reports.url}/step-up`);
    expect(stepUp.html).not.toContain('name="password"');
    const stepped = jsonOf<Profile>(await appCode(browser, stepUp, secret, 0));
    expect(stepped.claims).toMatchObject({ acr: acr.mfa, amr: ['pwd', 'otp', 'mfa'] });
    expect(stepped.claims.sub).toBe(passwordOnly.claims.sub);

    const other = new FormBrowser();
    await signInOnNyckel(other, await other.go(`${reports.url}/login`), email);
    const byClaim = await other.go(`${reports.url}/step-up-by-claim`);
    expect(jsonOf<Profile>(await appCode(other, byClaim, secret, 1)).claims).toMatchObject({ acr: acr.mfa });
  });
});
