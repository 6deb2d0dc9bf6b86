import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import { FormBrowser, textOf, type Page } from '../support/browser.ts';
import { codeIn, latestMail } from '../support/mail.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, signInWithPassword, startAuthorization } from '../support/relying-party.ts';

/**
 * The user's own revocations on the account pages: a new password and "delete all my devices" end the
 * other sessions and revoke what relying parties hold; the browser the user did it in stays signed in.
 */
let nyckel: TestNyckel;
let web: oidc.Configuration;
let counter = 0;
const callbackStop = (url: URL) => url.port === '4000';
const WEB_CALLBACK = 'http://localhost:4000/cb';
const NEW_PASSWORD = 'a brand new passphrase for revocation';
const url = (path: string) => new URL(path, nyckel.url).toString();

beforeAll(async () => {
  nyckel = await startTestNyckel({ env: { NYCKEL_ACCOUNT_RECENT_AUTH_MINUTES: '10' } });
  web = await relyingParty(nyckel.url, 'web', 'web-secret-web-secret-0001');
});
afterAll(() => nyckel?.stop());

/** A user; with `verifiedEmail: false` the user has no second factor at all. */
async function newUser(options: { verifiedEmail: boolean }) {
  const email = `self${++counter}@example.test`;
  const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
  if (!options.verifiedEmail) await nyckel.db.prisma.userEmail.updateMany({ where: { userId: user.id }, data: { verifiedAt: null } });
  return { email, user };
}

/** A browser signed in to the web portal (a third-party relying party with a refresh token). */
async function signedInToPortal(email: string) {
  const browser = new FormBrowser(callbackStop);
  const start = await startAuthorization(web, { redirect_uri: WEB_CALLBACK, scope: 'openid email offline_access', prompt: 'consent' });
  const { callback } = await signInWithPassword(browser, start, { email, password: TEST_PASSWORD });
  const tokens = await oidc.authorizationCodeGrant(web, callback, { pkceCodeVerifier: start.verifier, expectedState: start.state, expectedNonce: start.nonce });
  expect((await oidc.tokenIntrospection(web, tokens.refresh_token!)).active).toBe(true);
  return { browser, tokens };
}

async function expectPortalRevoked(portal: Awaited<ReturnType<typeof signedInToPortal>>) {
  const { tokens, browser } = portal;
  await expect(oidc.refreshTokenGrant(web, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  expect((await oidc.tokenIntrospection(web, tokens.refresh_token!)).active).toBe(false);
  expect((await oidc.tokenIntrospection(web, tokens.access_token)).active).toBe(false);
  const userinfo = await fetch(url('/me'), { headers: { authorization: `Bearer ${tokens.access_token}` } });
  expect(userinfo.status).toBe(401);
  expect(await nyckel.provider().AccessToken.find(tokens.access_token)).toBeUndefined();
  // The portal's browser session ended too: asking again shows the login page.
  const start = await startAuthorization(web, { redirect_uri: WEB_CALLBACK, scope: 'openid email' });
  const again = await browser.go(start.url.toString());
  expect(again.status).toBe(200);
  expect(again.html).toMatch(/<form[^>]*action="[^"]*\/login"/);
}

/** The account pages still open in the browser the change was made in. */
async function expectStillSignedIn(browser: FormBrowser) {
  const page = await browser.request(url('/account'));
  expect(page.status).toBe(200);
}

describe('a new password on the account pages', () => {
  test("revokes the relying party's refresh and access tokens and ends the other sessions; this browser stays", async () => {
    const { email, user } = await newUser({ verifiedEmail: false });
    const portal = await signedInToPortal(email);

    // This browser is also signed in to a first-party app.
    const browser = new FormBrowser(callbackStop);
    const spa = await relyingParty(nyckel.url, 'spa');
    const spaAuthorization = (params: Record<string, string> = {}) => startAuthorization(spa, { redirect_uri: 'http://localhost:4000/spa-cb', ...params });
    await signInWithPassword(browser, await spaAuthorization(), { email, password: TEST_PASSWORD }, { consent: false });
    const page = await browser.go(url('/account/password'));
    expect(new URL(page.url).pathname).toBe('/account/password');
    const done = await browser.submit(page, '/account/password', { current: TEST_PASSWORD, password: NEW_PASSWORD, confirm: NEW_PASSWORD });
    expect(textOf(done.html)).toContain('Your password is changed');

    await expectPortalRevoked(portal);
    await expectStillSignedIn(browser);
    // The first-party app's grant went too, but this browser's session gets it a new one without a question.
    const silent = await browser.go((await spaAuthorization({ prompt: 'none' })).url.toString());
    expect(new URL(silent.url).searchParams.has('code')).toBe(true);
    const event = await nyckel.db.prisma.auditEvent.findFirstOrThrow({ where: { userId: user.id, type: 'user.password_changed' } });
    // The portal's grant, the first-party app's and the account pages' own (their page session does not need it).
    expect(event.data).toMatchObject({ actor: 'user', sessionsEnded: 1, grantsRevoked: 3 });
  });
});

describe('delete all my devices', () => {
  test("revokes the relying party's refresh and access tokens and ends the other sessions; this browser stays", async () => {
    const { email, user } = await newUser({ verifiedEmail: true });
    const portal = await signedInToPortal(email);
    await nyckel.db.prisma.factorEnrolment.create({ data: { userId: user.id, type: 'totp', label: 'Lost phone', confirmed: true } });

    const browser = new FormBrowser(callbackStop);
    let page: Page = await browser.go(url('/account/lost-device'));
    page = await browser.submit(page, '/login', { email, password: TEST_PASSWORD });
    expect(new URL(page.url).pathname).toBe('/account/lost-device');
    const target = /name="target"[^>]*value="([0-9a-f-]{36})"/.exec(page.html)![1];
    const codePage = await browser.submit(page, '/account/lost-device/start', { target });
    const done = await browser.submit(codePage, '/verify', { code: codeIn((await latestMail(nyckel.db.prisma, email)).text) });
    expect(textOf(done.html)).toContain('All your devices are deleted');

    await expectPortalRevoked(portal);
    await expectStillSignedIn(browser);
    const event = await nyckel.db.prisma.auditEvent.findFirstOrThrow({ where: { userId: user.id, type: 'user.factors_reset' } });
    expect(event.data).toMatchObject({ actor: 'user', removed: { factors: 1, sessions: 1, grants: 2 } });
  });
});
