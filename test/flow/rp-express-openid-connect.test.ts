import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import express from 'express';
import type { ConfigParams } from 'express-openid-connect';
import { decodeProtectedHeader } from 'jose';
import { parseClientsFile } from '../../src/clients/clients-file.ts';
import { acr } from '../../src/factors/acr.ts';
import { FormBrowser, type Page } from '../support/browser.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { codeAt, withAuthenticatorApp } from '../support/otp.ts';
import { jsonOf, listeningApp, signInOnNyckel, type RelyingPartyApp } from '../support/rp-apps.ts';

/**
 * express-openid-connect (Auth0's middleware for express) as the relying party of real express apps,
 * configured as docs/relying-parties.md says: one whose client requires a second factor, one that asks
 * for it by step-up, and one whose client has ES256 ID tokens (with and without telling the middleware).
 */
let nyckel: TestNyckel;
let portal: RelyingPartyApp;
let reports: RelyingPartyApp;
let legacy: RelyingPartyApp;
let legacyUntold: RelyingPartyApp;
let counter = 0;
/**
 * Loaded in beforeAll: the package is CommonJS and require()s openid-client, an ES module this suite's
 * static imports are still linking; jest refuses that require as a cycle. Imported later, it is not one.
 */
let eoc: typeof import('express-openid-connect');

interface AppClient {
  id: string;
  secret: string;
  /** The client's extra clients-file lines. */
  extra: string[];
  idTokenSigningAlg?: string;
  /** Registers the app's /backchannel-logout and has the middleware answer there. */
  backchannelLogout?: boolean;
}

const portalClient: AppClient = { id: 'portal', secret: 'portal-secret-portal-secret-01', extra: ['mfa: { required: true, methods: [totp] }'] };
const reportsClient: AppClient = { id: 'reports', secret: 'reports-secret-reports-secret-1', extra: ['mfa: { methods: [totp] }'], backchannelLogout: true };
const legacyClient: AppClient = {
  id: 'legacy',
  secret: 'legacy-secret-legacy-secret-01',
  extra: ['id_token_signed_response_alg: ES256'],
  idTokenSigningAlg: 'ES256',
};
/** The same client, the middleware left at its RS256 default. */
const legacyUntoldClient: AppClient = { ...legacyClient, id: 'legacy-untold', idTokenSigningAlg: undefined };

/** A clients-file entry of docs/relying-parties.md ("express-openid-connect"), at the app's URL. */
function clientEntry(client: AppClient, appUrl: string): string {
  const backchannel = client.backchannelLogout ? [`backchannel_logout_uri: ${appUrl}/backchannel-logout`, 'backchannel_logout_session_required: true'] : [];
  return `
  - client_id: ${client.id}
    name: App ${client.id}
    first_party: true
    redirect_uris: [${appUrl}/callback]
    post_logout_redirect_uris: [${appUrl}/bye]
    token_endpoint_auth_method: client_secret_basic
    client_secret: ${client.secret}
    scopes: [openid, profile, email, offline_access]
    ${[...client.extra, ...backchannel].join('\n    ')}`;
}

type LogoutStore = NonNullable<Exclude<ConfigParams['backchannelLogout'], boolean | undefined>['store']>;

/** express-session's store interface in memory: where the middleware notes the logout tokens it is sent. */
const logoutEntries = new Map<string, Parameters<LogoutStore['set']>[1]>();
const logoutStore: LogoutStore = {
  get: (key, done) => done(null, logoutEntries.get(key)),
  set: (key, value, done) => {
    logoutEntries.set(key, value);
    done?.();
  },
  destroy: (key, done) => {
    logoutEntries.delete(key);
    done?.();
  },
};

/** The app: the middleware as the guide configures it, and routes that show what the app sees. */
function expressOidcApp(app: RelyingPartyApp, client: AppClient) {
  const router = express.Router();
  router.use(
    eoc.auth({
      issuerBaseURL: nyckel.url,
      baseURL: app.url,
      clientID: client.id,
      clientSecret: client.secret,
      ...(client.idTokenSigningAlg ? { idTokenSigningAlg: client.idTokenSigningAlg } : {}),
      ...(client.backchannelLogout ? { backchannelLogout: { store: logoutStore } } : {}),
      secret: 'a-long-random-cookie-secret-for-the-app-0001',
      authRequired: false,
      idpLogout: true,
      routes: { postLogoutRedirect: '/bye' },
      authorizationParams: { response_type: 'code', scope: 'openid profile email offline_access' },
    }),
  );
  router.get('/', (req, res) => void res.json({ authenticated: req.oidc.isAuthenticated() }));
  router.get('/profile', eoc.requiresAuth(), async (req, res) => {
    res.json({
      user: req.oidc.user,
      claims: req.oidc.idTokenClaims,
      idTokenAlg: decodeProtectedHeader(req.oidc.idToken!).alg,
      userinfo: await req.oidc.fetchUserInfo(),
      hasRefreshToken: !!req.oidc.refreshToken,
    });
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
  [portal, reports, legacy, legacyUntold] = await Promise.all([listeningApp(), listeningApp(), listeningApp(), listeningApp()]);
  const entries = [
    clientEntry(portalClient, portal.url),
    clientEntry(reportsClient, reports.url),
    clientEntry(legacyClient, legacy.url),
    clientEntry(legacyUntoldClient, legacyUntold.url),
  ];
  const clients = `clients:${entries.join('')}\n`;
  nyckel = await startTestNyckel({ clients: parseClientsFile(clients, 'rp-clients.yaml') });
  expressOidcApp(portal, portalClient);
  expressOidcApp(reports, reportsClient);
  expressOidcApp(legacy, legacyClient);
  expressOidcApp(legacyUntold, legacyUntoldClient);
});
afterAll(async () => {
  await portal?.close();
  await reports?.close();
  await legacy?.close();
  await legacyUntold?.close();
  await nyckel?.stop();
});

/** A user with a password and an authenticator app. */
async function userWithApp() {
  const email = `express.oidc${++counter}@example.test`;
  const user = await nyckel.accounts.create({ email, name: 'Ada Lindqvist', password: TEST_PASSWORD, locale: 'en' });
  return { email, secret: await withAuthenticatorApp(nyckel, user.id) };
}

/** On Nyckel's authenticator-app page (the client's method, offered at once): a code, then back to the app. */
async function appCode(browser: FormBrowser, page: Page, secret: string, step: number): Promise<Page> {
  expect(page.url).toMatch(/\/mfa\/totp(\?send=1)?$/);
  return browser.submit(page, '/verify', { code: await codeAt(secret, step) });
}

interface Profile {
  user: Record<string, unknown>;
  claims: Record<string, unknown>;
  idTokenAlg: string;
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
    expect(profile.idTokenAlg).toBe('RS256');
    // The profile is in req.oidc.user (from the ID token) and in userinfo alike.
    expect(profile.user).toMatchObject({ sub: profile.claims.sub, email, email_verified: true, name: 'Ada Lindqvist' });
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

  test('a client with ES256 ID tokens: signs in with idTokenSigningAlg ES256, is refused at the RS256 default', async () => {
    const email = `express.oidc${++counter}@example.test`;
    await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
    const browser = new FormBrowser();
    expect(jsonOf(await signInOnNyckel(browser, await browser.go(`${legacy.url}/login`), email))).toEqual({ authenticated: true });
    const profile = jsonOf<Profile>(await browser.go(`${legacy.url}/profile`));
    expect(profile.idTokenAlg).toBe('ES256');
    expect(profile.userinfo.email).toBe(email);

    // Left at its RS256 default (the one difference from the app above), the middleware refuses the
    // ES256 ID token at the callback; it keeps the reason to itself.
    const untold = new FormBrowser();
    const refused = await signInOnNyckel(untold, await untold.go(`${legacyUntold.url}/login`), email);
    expect(refused.url).toMatch(new RegExp(`^${legacyUntold.url}/callback\\?`));
    expect(refused.status).toBe(400);
    expect(JSON.parse(refused.html)).toMatchObject({ error: 'BadRequestError', message: 'invalid response encountered' });
    expect(jsonOf(await untold.go(`${legacyUntold.url}/`))).toEqual({ authenticated: false });
  });

  test('back-channel logout: signing out at one app ends the session at the other (its /backchannel-logout)', async () => {
    const { email, secret } = await userWithApp();
    const browser = new FormBrowser();
    await signInOnNyckel(browser, await browser.go(`${reports.url}/login`), email);
    expect(jsonOf(await browser.go(`${reports.url}/`))).toEqual({ authenticated: true });
    // The portal asks only for the app code: the Nyckel session has the password already.
    expect(jsonOf(await appCode(browser, await browser.go(`${portal.url}/login`), secret, 0))).toEqual({ authenticated: true });

    const confirm = await browser.go(`${portal.url}/logout`);
    await browser.submit(confirm, /\/session\/end\/confirm$/, { logout: 'yes' });
    expect(logoutEntries.size).toBeGreaterThan(0);
    // The reports app's own cookie is still there, but the middleware now counts it as logged out.
    expect(jsonOf(await browser.go(`${reports.url}/`))).toEqual({ authenticated: false });
  });
});
