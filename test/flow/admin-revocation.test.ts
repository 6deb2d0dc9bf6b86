import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import { FormBrowser } from '../support/browser.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, signInWithPassword, startAuthorization } from '../support/relying-party.ts';

/**
 * Revocation through the admin API, where the tokens live in production (client_credentials and
 * access tokens in Redis, grants and refresh tokens in PostgreSQL): an admin token revoked at
 * /token/revocation, and a user disabled or reset by the help desk.
 */
let nyckel: TestNyckel;
let helpdesk: oidc.Configuration;
let web: oidc.Configuration;
let counter = 0;
const callbackStop = (url: URL) => url.port === '4000';
const WEB_CALLBACK = 'http://localhost:4000/cb';

beforeAll(async () => {
  nyckel = await startTestNyckel();
  helpdesk = await relyingParty(nyckel.url, 'helpdesk', 'helpdesk-secret-helpdesk-01');
  web = await relyingParty(nyckel.url, 'web', 'web-secret-web-secret-0001');
});
afterAll(() => nyckel?.stop());

const adminToken = async () => (await oidc.clientCredentialsGrant(helpdesk, { scope: 'nyckel:admin', resource: `${nyckel.url}/admin` })).access_token;

async function admin(token: string, method: string, path: string, body?: unknown) {
  const response = await fetch(`${nyckel.url}/admin/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, unknown> };
}

/** A user signed in to the web portal in a browser, with the portal's tokens (a refresh token too). */
async function userWithPortalTokens() {
  const email = `helpdesk-case${++counter}@example.test`;
  const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
  const browser = new FormBrowser(callbackStop);
  const start = await startAuthorization(web, { redirect_uri: WEB_CALLBACK, scope: 'openid email offline_access', prompt: 'consent' });
  const { callback } = await signInWithPassword(browser, start, { email, password: TEST_PASSWORD });
  const tokens = await oidc.authorizationCodeGrant(web, callback, { pkceCodeVerifier: start.verifier, expectedState: start.state, expectedNonce: start.nonce });
  return { user, browser, tokens };
}

async function expectPortalRevoked({ browser, tokens }: Awaited<ReturnType<typeof userWithPortalTokens>>) {
  await expect(oidc.refreshTokenGrant(web, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  expect((await oidc.tokenIntrospection(web, tokens.refresh_token!)).active).toBe(false);
  expect((await oidc.tokenIntrospection(web, tokens.access_token)).active).toBe(false);
  expect((await fetch(new URL('/me', nyckel.url), { headers: { authorization: `Bearer ${tokens.access_token}` } })).status).toBe(401);
  const start = await startAuthorization(web, { redirect_uri: WEB_CALLBACK, scope: 'openid email' });
  const page = await browser.go(start.url.toString());
  expect(page.status).toBe(200);
  expect(page.html).toMatch(/<form[^>]*action="[^"]*\/login"/);
}

describe('admin API tokens', () => {
  test('a token revoked at /token/revocation gets 401 from the admin API at once', async () => {
    const token = await adminToken();
    expect((await admin(token, 'GET', '/audit?limit=1')).status).toBe(200);
    await oidc.tokenRevocation(helpdesk, token);
    const refused = await admin(token, 'GET', '/audit?limit=1');
    expect(refused.status).toBe(401);
    expect(refused.body).toMatchObject({ error: 'invalid_token' });
    expect((await oidc.tokenIntrospection(helpdesk, token)).active).toBe(false);
  });

  test('another client cannot revoke it, and it lives 10 minutes by default', async () => {
    const token = await adminToken();
    const other = await relyingParty(nyckel.url, 'machine', 'machine-secret-machine-01');
    // RFC 7009: the answer is 200 either way, but the token stays.
    await oidc.tokenRevocation(other, token);
    expect((await admin(token, 'GET', '/audit?limit=1')).status).toBe(200);
    const introspection = await oidc.tokenIntrospection(helpdesk, token);
    expect(introspection.exp! - introspection.iat!).toBe(600);
  });
});

describe("the help desk revokes a user's access", () => {
  test("disable: sessions end, the relying party's refresh and access tokens are refused", async () => {
    const victim = await userWithPortalTokens();
    const disabled = await admin(await adminToken(), 'POST', `/users/${victim.user.id}/disable`);
    expect(disabled).toMatchObject({ status: 200, body: { status: 'disabled' } });
    await expectPortalRevoked(victim);
  });

  test('reset-factors: the same, and the answer counts the grants revoked', async () => {
    const victim = await userWithPortalTokens();
    const reset = await admin(await adminToken(), 'POST', `/users/${victim.user.id}/reset-factors`, { reason: 'ticket 5: phone stolen' });
    expect(reset).toMatchObject({ status: 200, body: { removed: { sessions: 1, grants: 1 } } });
    await expectPortalRevoked(victim);
  });
});
