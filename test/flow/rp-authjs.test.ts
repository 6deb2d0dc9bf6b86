import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { ExpressAuth } from '@auth/express';
import express from 'express';
import { decodeJwt } from 'jose';
import { parseClientsFile } from '../../src/clients/clients-file.ts';
import { acr } from '../../src/factors/acr.ts';
import { FormBrowser, type Page } from '../support/browser.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { codeAt, withAuthenticatorApp } from '../support/otp.ts';
import { jsonOf, listeningApp, signInOnNyckel, type RelyingPartyApp } from '../support/rp-apps.ts';

/** Auth.js (the library under NextAuth.js) as the relying party of a real express app, through @auth/express. */
let nyckel: TestNyckel;
let app: RelyingPartyApp;
const email = 'authjs.user@example.test';
let secret: string;

/** The clients-file entry of docs/relying-parties.md ("Auth.js"), at the app's URL. */
function clientsYaml(appUrl: string): string {
  return `
clients:
  - client_id: intranet
    name: Intranet
    first_party: true
    redirect_uris: [${appUrl}/auth/callback/nyckel, ${appUrl}/auth/callback/nyckel-userinfo]
    post_logout_redirect_uris: [${appUrl}/]
    token_endpoint_auth_method: client_secret_basic
    client_secret: intranet-secret-intranet-secret
    scopes: [openid, profile, email, offline_access]
    mfa: { methods: [totp] }
`;
}

/** Auth.js's errors, kept to show in a failing test rather than printed. */
const authJsErrors: string[] = [];

/** The provider as the guide configures it. */
function nyckelProvider() {
  return {
    id: 'nyckel',
    name: 'Nyckel',
    type: 'oidc' as const,
    issuer: nyckel.url,
    clientId: 'intranet',
    clientSecret: 'intranet-secret-intranet-secret',
    checks: ['pkce' as const, 'state' as const, 'nonce' as const],
    authorization: { params: { scope: 'openid profile email offline_access' } },
  };
}

function authJsApp() {
  const router = express.Router();
  router.use(
    '/auth',
    ExpressAuth({
      // The second reads the profile from userinfo instead of the ID token (`idToken: false`).
      providers: [nyckelProvider(), { ...nyckelProvider(), id: 'nyckel-userinfo', idToken: false }],
      secret: 'a-long-random-auth-js-secret-for-the-app-0001',
      trustHost: true,
      logger: { error: (error) => void authJsErrors.push(`${error.name}: ${error.message}`) },
      callbacks: {
        // As the guide says: acr from the ID token (the profile is userinfo's); the refresh token is in the account.
        jwt: ({ token, account }) => {
          if (!account) return token;
          return { ...token, acr: account.id_token ? decodeJwt(account.id_token).acr : undefined, hasRefreshToken: !!account.refresh_token };
        },
        session: ({ session, token }) => Object.assign(session, { acr: token.acr, hasRefreshToken: token.hasRefreshToken }),
      },
    }),
  );
  router.get('/', (_req, res) => void res.json({ home: true }));
  app.mount(router);
}

beforeAll(async () => {
  app = await listeningApp();
  nyckel = await startTestNyckel({ clients: parseClientsFile(clientsYaml(app.url), 'rp-clients.yaml') });
  const user = await nyckel.accounts.create({ email, name: 'Britt Sandberg', password: TEST_PASSWORD, locale: 'en' });
  secret = await withAuthenticatorApp(nyckel, user.id);
  authJsApp();
});
afterAll(async () => {
  await app?.close();
  await nyckel?.stop();
});

interface Session {
  user: Record<string, unknown>;
  expires: string;
  acr?: string;
  hasRefreshToken?: boolean;
}

/**
 * What Auth.js's signIn(providerId, options, authorizationParams) does in the browser: a POST with the
 * CSRF token, the authorization parameters in the query; it lands on Nyckel's pages.
 */
async function startSignIn(browser: FormBrowser, providerId: string, authorizationParams: Record<string, string> = {}): Promise<Page> {
  const { csrfToken } = jsonOf<{ csrfToken: string }>(await browser.go(`${app.url}/auth/csrf`));
  const page = await browser.go(`${app.url}/auth/signin/${providerId}?${new URLSearchParams(authorizationParams)}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrfToken, callbackUrl: `${app.url}/` }).toString(),
  });
  expect(page.url.startsWith(`${nyckel.url}/interaction/`)).toBe(true);
  return page;
}

/** Back at the app after Nyckel's pages: its home page, then the session Auth.js gives. */
async function sessionAfter(browser: FormBrowser, back: Page): Promise<Session> {
  expect(authJsErrors).toEqual([]);
  expect(back.url).toBe(`${app.url}/`);
  expect(jsonOf(back)).toEqual({ home: true });
  return jsonOf<Session>(await browser.go(`${app.url}/auth/session`));
}

async function signInThrough(providerId: string, browser = new FormBrowser()): Promise<Session> {
  expect(jsonOf(await browser.go(`${app.url}/auth/session`))).toBeNull();
  return sessionAfter(browser, await signInOnNyckel(browser, await startSignIn(browser, providerId), email));
}

describe('Auth.js (@auth/express)', () => {
  test('signs in through /auth/signin/nyckel and the callback; the session has the email and name', async () => {
    const session = await signInThrough('nyckel');
    expect(session.user).toMatchObject({ email, name: 'Britt Sandberg' });
    expect(new Date(session.expires).getTime()).toBeGreaterThan(Date.now());
    expect(session.acr).toBe(acr.password);
    expect(session.hasRefreshToken).toBe(true);
  });

  test('steps up with acr_values passed to the sign-in: only the app code inside the Nyckel session, then acr mfa', async () => {
    const browser = new FormBrowser();
    expect((await signInThrough('nyckel', browser)).acr).toBe(acr.password);
    const appPage = await startSignIn(browser, 'nyckel', { acr_values: acr.mfa });
    expect(appPage.url).toMatch(/\/mfa\/totp(\?send=1)?$/);
    const back = await browser.submit(appPage, '/verify', { code: await codeAt(secret, 0) });
    expect((await sessionAfter(browser, back)).acr).toBe(acr.mfa);
  });

  test('with idToken: false the profile read from userinfo is the same as in the ID token', async () => {
    const session = await signInThrough('nyckel-userinfo');
    expect(session.user).toMatchObject({ email, name: 'Britt Sandberg' });
  });
});
