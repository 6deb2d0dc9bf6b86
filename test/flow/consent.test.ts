import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import { FormBrowser, textOf } from '../support/browser.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, startAuthorization } from '../support/relying-party.ts';

// `web` (the statistics portal) is not first-party: it asks for consent.
const WEB = { id: 'web', secret: 'web-secret-web-secret-0001', redirectUri: 'http://localhost:4000/cb' };
let nyckel: TestNyckel;
let web: oidc.Configuration;
const callbackStop = (url: URL) => url.port === '4000';

beforeAll(async () => {
  nyckel = await startTestNyckel();
  web = await relyingParty(nyckel.url, WEB.id, WEB.secret);
});
afterAll(() => nyckel?.stop());

/** A sign-in in a new browser (a new session): the page after the password. */
async function signIn(email: string, scope: string, extra: Record<string, string> = {}) {
  const start = await startAuthorization(web, { redirect_uri: WEB.redirectUri, scope, ui_locales: 'en', ...extra });
  const browser = new FormBrowser(callbackStop);
  const page = await browser.submit(await browser.go(start.url.toString()), '/login', { username: email, password: TEST_PASSWORD });
  return { start, browser, page };
}

describe('consent', () => {
  test('asked once per user and app, across sessions; more scopes ask again; revoked on the account pages', async () => {
    const email = 'consenting@example.se';
    const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
    await nyckel.db.prisma.userEmail.updateMany({ where: { userId: user.id }, data: { verifiedAt: null } });

    // (oidc-provider issues a refresh token for offline_access only with prompt=consent.)
    const first = await signIn(email, 'openid email offline_access', { prompt: 'consent' });
    expect(textOf(first.page.html)).toContain('See your email address');
    const allowed = await first.browser.submit(first.page, '/consent', { decision: 'allow' });
    const tokens = await oidc.authorizationCodeGrant(web, new URL(allowed.url), {
      pkceCodeVerifier: first.start.verifier,
      expectedState: first.start.state,
      expectedNonce: first.start.nonce,
    });

    // Another browser, another session: straight back to the app.
    const second = await signIn(email, 'openid email');
    expect(second.page.url).toContain('code=');
    // More than was allowed: asked again, for the new part only.
    const more = await signIn(email, 'openid email profile');
    expect(more.page.url).not.toContain('code=');
    expect(textOf(more.page.html)).toContain('See your name and preferred language');
    expect(textOf(more.page.html)).not.toContain('See your email address');

    // The account pages list the app; "Revoke access" forgets the consent and revokes its tokens.
    const account = new FormBrowser(callbackStop);
    let page = await account.go(new URL('/account', nyckel.url).toString());
    page = await account.submit(page, '/login', { username: email, password: TEST_PASSWORD });
    expect(textOf(page.html)).toContain('Apps you have given access');
    expect(textOf(page.html)).toContain('Statistics portal');
    const revoked = await account.submit(page, `/account/consents/${WEB.id}/revoke`, {});
    expect(textOf(revoked.html)).toContain('The app no longer has access');
    expect(textOf(revoked.html)).toContain('No other apps have access to your account.');
    await expect(oidc.refreshTokenGrant(web, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    const again = await signIn(email, 'openid email');
    expect(textOf(again.page.html)).toContain('See your email address');
    // prompt=consent asks whatever was allowed before.
    await again.browser.submit(again.page, '/consent', { decision: 'allow' });
    expect(textOf((await signIn(email, 'openid email', { prompt: 'consent' })).page.html)).toContain('See your email address');
    const events = await nyckel.db.prisma.auditEvent.findMany({ where: { userId: user.id, type: { startsWith: 'consent.' } }, orderBy: { id: 'asc' } });
    expect(events.map((e) => e.type)).toEqual(['consent.granted', 'consent.revoked', 'consent.granted']);
  });

  test('two browsers allowing at once both get back to the app, and the consent is one row', async () => {
    const email = 'parallel.consent@example.se';
    const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
    const pages = await Promise.all([signIn(email, 'openid email'), signIn(email, 'openid email profile')]);
    for (const { page } of pages) expect(textOf(page.html)).toContain('Allow');
    const allowed = await Promise.all(pages.map(({ browser, page }) => browser.submit(page, '/consent', { decision: 'allow' })));
    for (const page of allowed) expect(page.url).toContain('code=');
    const rows = await nyckel.db.prisma.consent.findMany({ where: { userId: user.id } });
    expect(rows).toHaveLength(1);
    expect(rows[0].scopes).toEqual(expect.arrayContaining(['openid', 'email']));
  });
});
