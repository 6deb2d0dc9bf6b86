import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { FormBrowser, textOf } from '../support/browser.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, signInWithPassword, startAuthorization } from '../support/relying-party.ts';

let nyckel: TestNyckel;
const email = 'anna.svensson@scb.example';

beforeAll(async () => {
  nyckel = await startTestNyckel();
  await nyckel.accounts.create({ email, password: TEST_PASSWORD, name: 'Anna Svensson', phone: '+46701234572', locale: 'sv' });
});
afterAll(() => nyckel?.stop());

const callbackStop = (url: URL) => url.port === '4000';

describe('authorization code + PKCE with openid-client as the relying party', () => {
  test('sign-in, consent, tokens, userinfo, refresh rotation, revocation and logout', async () => {
    const config = await relyingParty(nyckel.url, 'web', 'web-secret-web-secret-0001');
    // The ID token's signature is checked against /jwks too (openid-client skips it by default).
    oidc.enableNonRepudiationChecks(config);
    const browser = new FormBrowser(callbackStop);
    const start = await startAuthorization(config, {
      redirect_uri: 'http://localhost:4000/cb',
      scope: 'openid profile email offline_access',
      prompt: 'consent',
    });
    const { callback, pages } = await signInWithPassword(browser, start, { email, password: TEST_PASSWORD });
    expect(pages.some((p) => p.html.includes('Statistics portal'))).toBe(true);
    expect(callback.searchParams.get('iss')).toBe(nyckel.url);

    const tokens = await oidc.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: start.verifier,
      expectedState: start.state,
      expectedNonce: start.nonce,
      idTokenExpected: true,
    });
    const claims = tokens.claims()!;
    // The granted scopes' claims are in the ID token too (as relying-party libraries expect).
    expect(claims).toMatchObject({ email, email_verified: true, name: 'Anna Svensson' });
    expect(claims.acr).toBe('urn:nyckel:acr:password');
    expect(claims.amr).toEqual(['pwd']);
    // RS256, OIDC's default, for a client that registers no id_token_signed_response_alg.
    expect(decodeProtectedHeader(tokens.id_token!).alg).toBe('RS256');
    expect(tokens.refresh_token).toBeTruthy();

    const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
    expect(userinfo).toMatchObject({ sub: claims.sub, email, email_verified: true, name: 'Anna Svensson', locale: 'sv' });

    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.access_token).not.toBe(tokens.access_token);
    expect(refreshed.claims()!.sub).toBe(claims.sub);

    await oidc.tokenRevocation(config, refreshed.access_token);
    const introspection = await oidc.tokenIntrospection(config, refreshed.access_token);
    expect(introspection.active).toBe(false);

    const logout = oidc.buildEndSessionUrl(config, {
      id_token_hint: tokens.id_token!,
      post_logout_redirect_uri: 'http://localhost:4000/bye',
      state: 'bye-state',
    });
    const confirm = await browser.go(logout.toString());
    expect(confirm.status).toBe(200);
    expect(confirm.html).toContain('op.logoutForm');
    const done = await browser.submit(confirm, /\/session\/end\/confirm$/, { logout: 'yes' });
    expect(done.url).toBe('http://localhost:4000/bye?state=bye-state');

    // Signed out: the next authorization asks for the password again.
    const again = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/cb' });
    const page = await browser.go(again.url.toString());
    expect(page.html).toContain('name="password"');
  });

  test('logout: "stay signed in" signs out of that app only and says so; "sign out" says you are signed out', async () => {
    const config = await relyingParty(nyckel.url, 'spa');
    const browser = new FormBrowser(callbackStop);
    const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/spa-cb', ui_locales: 'en' });
    const { callback } = await signInWithPassword(browser, start, { email, password: TEST_PASSWORD });
    const tokens = await oidc.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: start.verifier,
      expectedState: start.state,
      expectedNonce: start.nonce,
    });
    const stay = await browser.go(oidc.buildEndSessionUrl(config, { id_token_hint: tokens.id_token! }).toString());
    // The confirmation is headed as signing out, not as signing in.
    expect(textOf(stay.html)).toContain('Signing out of Care portal');
    expect(textOf(stay.html)).not.toContain('Signing in to');
    const stayed = await browser.submit(stay, /\/session\/end\/confirm$/, {});
    expect(textOf(stayed.html)).toContain('You are still signed in');
    expect(textOf(stayed.html)).not.toContain('You are signed out');
    // Still signed in to Nyckel: no password asked at the next authorization.
    const again = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/spa-cb' });
    const next = await browser.go(again.url.toString());
    expect(next.url).toContain('code=');
    const tokensAgain = await oidc.authorizationCodeGrant(config, new URL(next.url), {
      pkceCodeVerifier: again.verifier,
      expectedState: again.state,
      expectedNonce: again.nonce,
    });
    const leave = await browser.go(oidc.buildEndSessionUrl(config, { id_token_hint: tokensAgain.id_token! }).toString());
    const left = await browser.submit(leave, /\/session\/end\/confirm$/, { logout: 'yes' });
    expect(textOf(left.html)).toContain('You have been signed out');
  });

  test('a public client rotates refresh tokens and refuses the old one', async () => {
    const config = await relyingParty(nyckel.url, 'spa');
    const browser = new FormBrowser(callbackStop);
    const start = await startAuthorization(config, {
      redirect_uri: 'http://localhost:4000/spa-cb',
      scope: 'openid email offline_access',
      prompt: 'consent',
    });
    const { callback } = await signInWithPassword(browser, start, { email, password: TEST_PASSWORD }, { consent: false });
    const tokens = await oidc.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: start.verifier,
      expectedState: start.state,
      expectedNonce: start.nonce,
    });
    const first = tokens.refresh_token!;
    const second = await oidc.refreshTokenGrant(config, first);
    expect(second.refresh_token).toBeTruthy();
    expect(second.refresh_token).not.toBe(first);
    await expect(oidc.refreshTokenGrant(config, first)).rejects.toMatchObject({ error: 'invalid_grant' });
    // Reuse of a rotated token is treated as theft: the whole grant is revoked.
    await expect(oidc.refreshTokenGrant(config, second.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  test('a client that asks for ES256 gets ES256 ID tokens', async () => {
    const config = await relyingParty(nyckel.url, 'es256', 'legacy-secret-legacy-0001', 'post');
    oidc.enableNonRepudiationChecks(config);
    const browser = new FormBrowser(callbackStop);
    const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/legacy-cb' });
    const { callback } = await signInWithPassword(browser, start, { email, password: TEST_PASSWORD }, { consent: false });
    const tokens = await oidc.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: start.verifier,
      expectedState: start.state,
      expectedNonce: start.nonce,
    });
    expect(decodeProtectedHeader(tokens.id_token!).alg).toBe('ES256');
  });

  test('client_credentials with a resource indicator gives a JWT access token for that API', async () => {
    const config = await relyingParty(nyckel.url, 'machine', 'machine-secret-machine-01');
    const tokens = await oidc.clientCredentialsGrant(config, { scope: 'reports:read', resource: 'https://api.example.test/reports' });
    const payload = decodeJwt(tokens.access_token);
    expect(payload).toMatchObject({ aud: 'https://api.example.test/reports', scope: 'reports:read', client_id: 'machine', iss: nyckel.url });
    expect(payload.exp! - payload.iat!).toBe(600);
    await expect(oidc.clientCredentialsGrant(config, { scope: 'reports:read', resource: 'https://unknown.example/' })).rejects.toMatchObject({
      error: 'invalid_target',
    });
  });

  test('pushed authorization requests work', async () => {
    const config = await relyingParty(nyckel.url, 'web', 'web-secret-web-secret-0001');
    const verifier = oidc.randomPKCECodeVerifier();
    const url = await oidc.buildAuthorizationUrlWithPAR(config, {
      redirect_uri: 'http://localhost:4000/cb',
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state: 'par-state',
    });
    expect(url.searchParams.get('request_uri')).toMatch(/^urn:ietf:params:oauth:request_uri:/);
    const browser = new FormBrowser(callbackStop);
    const page = await browser.go(url.toString());
    expect(page.html).toContain('name="password"');
  });
});
