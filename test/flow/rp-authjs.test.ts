import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { ExpressAuth } from '@auth/express';
import express from 'express';
import { parseClientsFile } from '../../src/clients/clients-file.ts';
import { FormBrowser } from '../support/browser.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { jsonOf, listeningApp, signInOnNyckel, type RelyingPartyApp } from '../support/rp-apps.ts';

/** Auth.js (the library under NextAuth.js) as the relying party of a real express app, through @auth/express. */
let nyckel: TestNyckel;
let app: RelyingPartyApp;
const email = 'authjs.user@example.test';

/** The clients-file entry of docs/relying-parties.md ("Auth.js"), at the app's URL. */
function clientsYaml(appUrl: string): string {
  return `
clients:
  - client_id: intranet
    name: Intranet
    first_party: true
    redirect_uris: [${appUrl}/auth/callback/nyckel, ${appUrl}/auth/callback/nyckel-id-token-only]
    post_logout_redirect_uris: [${appUrl}/]
    token_endpoint_auth_method: client_secret_basic
    client_secret: intranet-secret-intranet-secret
    scopes: [openid, profile, email]
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
    authorization: { params: { scope: 'openid profile email' } },
    // Nyckel puts profile claims in userinfo (an access token is issued): have Auth.js read them there.
    idToken: false,
  };
}

function authJsApp() {
  const router = express.Router();
  router.use(
    '/auth',
    ExpressAuth({
      // The second is the guide's provider without `idToken: false`, to show why the guide sets it.
      providers: [nyckelProvider(), { ...nyckelProvider(), id: 'nyckel-id-token-only', idToken: true }],
      secret: 'a-long-random-auth-js-secret-for-the-app-0001',
      trustHost: true,
      logger: { error: (error) => void authJsErrors.push(`${error.name}: ${error.message}`) },
    }),
  );
  router.get('/', (_req, res) => void res.json({ home: true }));
  app.mount(router);
}

beforeAll(async () => {
  app = await listeningApp();
  nyckel = await startTestNyckel({ clients: parseClientsFile(clientsYaml(app.url), 'rp-clients.yaml') });
  await nyckel.accounts.create({ email, name: 'Britt Sandberg', password: TEST_PASSWORD, locale: 'en' });
  authJsApp();
});
afterAll(async () => {
  await app?.close();
  await nyckel?.stop();
});

interface Session {
  user: Record<string, unknown>;
  expires: string;
}

/** Sign-in as the app's "Sign in with Nyckel" button does it: a POST with the CSRF token, then Nyckel's pages. */
async function signInThrough(providerId: string): Promise<Session> {
  const browser = new FormBrowser();
  expect(jsonOf(await browser.go(`${app.url}/auth/session`))).toBeNull();
  const { csrfToken } = jsonOf<{ csrfToken: string }>(await browser.go(`${app.url}/auth/csrf`));
  const login = await browser.go(`${app.url}/auth/signin/${providerId}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrfToken, callbackUrl: `${app.url}/` }).toString(),
  });
  expect(login.url.startsWith(`${nyckel.url}/interaction/`)).toBe(true);
  const back = await signInOnNyckel(browser, login, email);
  expect(authJsErrors).toEqual([]);
  expect(back.url).toBe(`${app.url}/`);
  expect(jsonOf(back)).toEqual({ home: true });
  return jsonOf<Session>(await browser.go(`${app.url}/auth/session`));
}

describe('Auth.js (@auth/express)', () => {
  test('signs in through /auth/signin/nyckel and the callback; the session has the email and name', async () => {
    const session = await signInThrough('nyckel');
    expect(session.user).toMatchObject({ email, name: 'Britt Sandberg' });
    expect(new Date(session.expires).getTime()).toBeGreaterThan(Date.now());
  });

  test('without idToken: false the profile is the ID token alone: no email, no name', async () => {
    const session = await signInThrough('nyckel-id-token-only');
    expect(session.user.email).toBeUndefined();
    expect(session.user.name).toBeUndefined();
  });
});
