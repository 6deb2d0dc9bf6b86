import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import { FormBrowser, textOf, type Page } from '../support/browser.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, signInWithPassword, startAuthorization } from '../support/relying-party.ts';
import { cliAccounts, lazyRedis } from '../../src/cli/common.ts';

/**
 * What a relying party and a browser see once a user's access is revoked by an operator: disabling
 * the user or setting their password. (The account pages' own revocations are in
 * revocation-account.test.ts, the admin API's in admin-revocation.test.ts.)
 */
let nyckel: TestNyckel;
let web: oidc.Configuration;
let counter = 0;
const callbackStop = (url: URL) => url.port === '4000';
const WEB_CALLBACK = 'http://localhost:4000/cb';

beforeAll(async () => {
  nyckel = await startTestNyckel();
  web = await relyingParty(nyckel.url, 'web', 'web-secret-web-secret-0001');
});
afterAll(() => nyckel?.stop());

async function newUser() {
  const email = `revoked${++counter}@example.test`;
  const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
  return { email, user };
}

/** A browser signed in to the web portal, and the portal's tokens (with a refresh token). */
async function signedInToPortal(email: string, browser = new FormBrowser(callbackStop)) {
  const start = await startAuthorization(web, { redirect_uri: WEB_CALLBACK, scope: 'openid email offline_access', prompt: 'consent' });
  const { callback } = await signInWithPassword(browser, start, { email, password: TEST_PASSWORD });
  const tokens = await oidc.authorizationCodeGrant(web, callback, { pkceCodeVerifier: start.verifier, expectedState: start.state, expectedNonce: start.nonce });
  expect(tokens.refresh_token).toBeTruthy();
  return { browser, tokens };
}

/** The same browser asks the portal's authorization again: where does it end up? */
async function authorizeAgain(browser: FormBrowser, params: Record<string, string> = {}): Promise<Page> {
  const start = await startAuthorization(web, { redirect_uri: WEB_CALLBACK, scope: 'openid email', ...params });
  return browser.go(start.url.toString());
}

function expectLoginPage(page: Page) {
  expect(page.status).toBe(200);
  expect(new URL(page.url).pathname).toMatch(/^\/interaction\/[^/]+$/);
  expect(page.html).toMatch(/<form[^>]*action="[^"]*\/login"/);
  expect(textOf(page.html)).toContain('Sign in');
}

/** Everything the relying party could still use is refused. */
async function expectRevoked(tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers) {
  await expect(oidc.refreshTokenGrant(web, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  expect((await oidc.tokenIntrospection(web, tokens.refresh_token!)).active).toBe(false);
  expect((await oidc.tokenIntrospection(web, tokens.access_token)).active).toBe(false);
  const userinfo = await fetch(new URL('/me', nyckel.url), { headers: { authorization: `Bearer ${tokens.access_token}` } });
  expect(userinfo.status).toBe(401);
  expect(userinfo.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
  // Gone from whichever store keeps them (Redis or the database), not just refused.
  expect(await nyckel.provider().AccessToken.find(tokens.access_token)).toBeUndefined();
  expect(await nyckel.provider().RefreshToken.find(tokens.refresh_token!)).toBeUndefined();
}

const rowsOf = (userId: string) => nyckel.db.prisma.oidcModel.findMany({ where: { payload: { path: ['accountId'], equals: userId } }, select: { type: true } });

describe('an operator disables a user', () => {
  test('their browser is sent to the login page (not a 500), and their refresh and access tokens stop working', async () => {
    const { email, user } = await newUser();
    const { browser, tokens } = await signedInToPortal(email);
    expect((await oidc.tokenIntrospection(web, tokens.refresh_token!)).active).toBe(true);

    await nyckel.accounts.setStatus(await nyckel.accounts.requireByLogin(email), 'disabled', { actor: 'test' });

    expectLoginPage(await authorizeAgain(browser));
    await expectRevoked(tokens);
    expect(await rowsOf(user.id)).toEqual([]);

    // Enabled again, the same browser signs in afresh; the old refresh token stays dead.
    await nyckel.accounts.setStatus(await nyckel.accounts.requireByLogin(email), 'active', { actor: 'test' });
    const again = await signedInToPortal(email, browser);
    expect(again.tokens.claims()!.sub).toBe(user.id);
    await expect(oidc.refreshTokenGrant(web, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  test('a session whose account was disabled without revoking anything still leads to a fresh sign-in, never a 5xx', async () => {
    const { email, user } = await newUser();
    const { browser } = await signedInToPortal(email);
    // As a direct change in the database, or a node that disabled before this version, would leave it.
    await nyckel.db.prisma.user.update({ where: { id: user.id }, data: { status: 'disabled' } });

    expectLoginPage(await authorizeAgain(browser));
    const silent = await authorizeAgain(browser, { prompt: 'none' });
    expect(new URL(silent.url).searchParams.get('error')).toBe('login_required');
  });
});

describe('the operator CLI', () => {
  /** The accounts the CLI commands use, on this Nyckel's database (and Redis, in the production setup). */
  async function asCli<T>(work: (accounts: ReturnType<typeof cliAccounts>) => Promise<T>): Promise<T> {
    const redis = await lazyRedis(nyckel.settings);
    try {
      return await work(cliAccounts(nyckel.db, nyckel.settings, redis));
    } finally {
      await redis.close();
    }
  }

  test("users set-password ends the sessions and revokes the relying party's tokens, in the database and in Redis", async () => {
    const { email, user } = await newUser();
    const { browser, tokens } = await signedInToPortal(email);
    await asCli(async (accounts) => accounts.setPassword(await accounts.requireByLogin(email), 'an operator chose this passphrase', { actor: 'cli' }));

    expectLoginPage(await authorizeAgain(browser));
    await expectRevoked(tokens);
    expect(await rowsOf(user.id)).toEqual([]);
    const event = await nyckel.db.prisma.auditEvent.findFirstOrThrow({ where: { userId: user.id, type: 'user.password_changed' } });
    expect(event.data).toMatchObject({ actor: 'cli', sessionsEnded: 1, grantsRevoked: 1 });
  });

  test('users disable does the same', async () => {
    const { email, user } = await newUser();
    const { browser, tokens } = await signedInToPortal(email);
    await asCli(async (accounts) => accounts.setStatus(await accounts.requireByLogin(email), 'disabled', { actor: 'cli' }));

    expectLoginPage(await authorizeAgain(browser));
    await expectRevoked(tokens);
    const event = await nyckel.db.prisma.auditEvent.findFirstOrThrow({ where: { userId: user.id, type: 'user.disabled' } });
    expect(event.data).toMatchObject({ actor: 'cli', sessionsEnded: 1, grantsRevoked: 1 });
  });
});
