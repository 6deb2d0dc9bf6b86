import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import { exportJWK, generateKeyPair } from 'jose';
import { parseClientsFile } from '../../src/clients/clients-file.ts';
import { FormBrowser } from '../support/browser.ts';
import { startTestNyckel, TEST_PASSWORD, testClientsYaml, type TestNyckel } from '../support/nyckel.ts';
import { codeAt, withAuthenticatorApp } from '../support/otp.ts';
import { relyingParty, startAuthorization } from '../support/relying-party.ts';

let nyckel: TestNyckel;
/** Each sign-in is a new user's with an app of its own (an app code works once, and later steps only within the drift). */
let users = 0;
let clientKeys: CryptoKeyPair;
let keyServer: http.Server;
const redirectUri = 'http://localhost:4000/fapi-cb';
const callbackStop = (url: URL) => url.port === '4000';

beforeAll(async () => {
  clientKeys = await generateKeyPair('ES256', { extractable: true });
  const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(clientKeys.publicKey)), kid: 'bank-1' }] });
  // The bank publishes its public key at a jwks_uri, as such clients usually do.
  keyServer = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(jwks));
  await new Promise<void>((resolve) => keyServer.listen(0, '127.0.0.1', resolve));
  const jwksUri = `http://127.0.0.1:${(keyServer.address() as AddressInfo).port}/jwks`;
  // A FAPI 2.0 client with private_key_jwt; PAR and DPoP are filled in by the profile.
  const clientsYaml = testClientsYaml.replace(
    'resources:',
    `  - client_id: bank
    name: Bank
    first_party: true
    security_profile: fapi2
    token_endpoint_auth_method: private_key_jwt
    jwks_uri: ${jwksUri}
    redirect_uris: [${redirectUri}]
    scopes: [openid, email, offline_access]
    mfa: { required: true, methods: [totp] }
resources:`,
  );
  // Codes live five minutes here, so that the FAPI client's cap of 60 seconds is seen.
  nyckel = await startTestNyckel({ clients: parseClientsFile(clientsYaml, 'test-clients.yaml'), env: { NYCKEL_AUTHORIZATION_CODE_TTL: '300' } });
});
afterAll(async () => {
  await nyckel?.stop();
  keyServer?.close();
});

function bank(): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(nyckel.url), 'bank', undefined, oidc.PrivateKeyJwt(clientKeys.privateKey), { execute: [oidc.allowInsecureRequests] });
}

/** PAR with DPoP, then password and app code in the hosted pages; returns the callback and what the token request needs. */
async function signIn(config: oidc.Configuration, DPoP: oidc.DPoPHandle) {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const params = {
    redirect_uri: redirectUri,
    scope: 'openid email offline_access',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
  };
  const url = await oidc.buildAuthorizationUrlWithPAR(config, params, { DPoP });
  const email = `fapi.user${++users}@example.test`;
  const secret = await withAuthenticatorApp(nyckel, (await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' })).id);
  const browser = new FormBrowser(callbackStop);
  const login = await browser.go(url.toString());
  const app = await browser.submit(login, '/login', { username: email, password: TEST_PASSWORD });
  expect(app.url).toMatch(/\/mfa\/totp(\?send=1)?$/);
  const done = await browser.submit(app, '/verify', { code: await codeAt(secret, 0) });
  return { callback: new URL(done.url), verifier, state };
}

describe('FAPI 2.0 Security Profile (security_profile: fapi2)', () => {
  test('discovery: the iss response parameter, PAR, S256 and only the auth methods a client can configure', async () => {
    const metadata = (await bank()).serverMetadata();
    expect(metadata.authorization_response_iss_parameter_supported).toBe(true);
    expect(metadata.pushed_authorization_request_endpoint).toBe(`${nyckel.url}/request`);
    expect(metadata.code_challenge_methods_supported).toEqual(['S256']);
    expect(metadata.response_types_supported).toEqual(['code']);
    expect(metadata.token_endpoint_auth_methods_supported).toEqual([
      'none',
      'client_secret_basic',
      'client_secret_post',
      'client_secret_jwt',
      'private_key_jwt',
    ]);
  });

  test('PAR, password and app code, DPoP-bound tokens; refreshing needs the DPoP key too', async () => {
    const config = await bank();
    const DPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair());
    const { callback, verifier, state } = await signIn(config, DPoP);
    expect(callback.searchParams.get('iss')).toBe(nyckel.url);
    const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state }, undefined, { DPoP });
    expect(tokens.token_type).toBe('dpop');
    expect(tokens.claims()).toMatchObject({ aud: 'bank', acr: 'urn:nyckel:acr:mfa' });
    expect(tokens.refresh_token).toBeDefined();
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!, undefined, { DPoP });
    expect(refreshed.token_type).toBe('dpop');
    // Not rotated (FAPI 2.0 5.3.2.1): the same refresh token stays.
    expect(refreshed.refresh_token ?? tokens.refresh_token).toBe(tokens.refresh_token);
  });

  test('its codes live at most 60 seconds, whatever NYCKEL_AUTHORIZATION_CODE_TTL says', async () => {
    const config = await bank();
    const { callback } = await signIn(config, oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair()));
    const code = await nyckel.provider().AuthorizationCode.find(callback.searchParams.get('code')!);
    const { exp, iat } = code as unknown as { exp: number; iat: number };
    expect(exp - iat).toBe(60);
  });

  test('a code without a DPoP proof at the token endpoint is refused', async () => {
    const config = await bank();
    const DPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair());
    const { callback, verifier, state } = await signIn(config, DPoP);
    // The pushed request bound the code to the DPoP key (dpop_jkt): without a proof the code is no good.
    await expect(oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state })).rejects.toMatchObject({
      error: 'invalid_grant',
    });
  });

  test('an authorization request that was not pushed is refused', async () => {
    const config = await bank();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    });
    const page = await new FormBrowser(callbackStop).go(url.toString());
    const answer = new URL(page.url);
    expect(answer.searchParams.get('error')).toBe('invalid_request');
    expect(answer.searchParams.get('error_description')).toBe('Pushed Authorization Request must be used');
    expect(answer.searchParams.get('iss')).toBe(nyckel.url);
  });

  test('other clients are unaffected: a plain authorization request of the public client still reaches the sign-in', async () => {
    const start = await startAuthorization(await relyingParty(nyckel.url, 'spa'), { redirect_uri: 'http://localhost:4000/spa-cb' });
    const page = await new FormBrowser(callbackStop).go(start.url.toString());
    expect(page.status).toBe(200);
    expect(page.url).toMatch(/\/interaction\//);
  });
});
