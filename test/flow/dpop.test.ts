import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import * as oidc from 'openid-client';
import { calculateJwkThumbprint, exportJWK, SignJWT } from 'jose';
import { parseClientsFile } from '../../src/clients/clients-file.ts';
import { FormBrowser } from '../support/browser.ts';
import { startTestNyckel, TEST_PASSWORD, testClientsYaml, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, signInWithPassword, startAuthorization } from '../support/relying-party.ts';

let nyckel: TestNyckel;
const email = 'dpop.user@example.test';
const callbackStop = (url: URL) => url.port === '4000';
const redirectUri = 'http://localhost:4000/dpop-cb';

/** A public first-party client that must bind its tokens to a DPoP key (RFC 9449). */
const clientsYaml = testClientsYaml.replace(
  'resources:',
  `  - client_id: dpop-app
    name: Mobile app
    first_party: true
    token_endpoint_auth_method: none
    dpop_bound_access_tokens: true
    redirect_uris: [${redirectUri}]
    scopes: [openid, email, offline_access]
resources:`,
);

beforeAll(async () => {
  nyckel = await startTestNyckel({ clients: parseClientsFile(clientsYaml, 'test-clients.yaml') });
  await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
});
afterAll(async () => {
  await nyckel?.stop();
});

/** Signs in as the DPoP client and returns what the token request needs. */
async function signedIn(config: oidc.Configuration) {
  const start = await startAuthorization(config, { redirect_uri: redirectUri, scope: 'openid email offline_access' });
  const { callback } = await signInWithPassword(new FormBrowser(callbackStop), start, { email, password: TEST_PASSWORD }, { consent: false });
  return { start, callback };
}

async function dpopTokens(config: oidc.Configuration, keyPair: CryptoKeyPair) {
  const { start, callback } = await signedIn(config);
  const DPoP = oidc.getDPoPHandle(config, keyPair);
  const tokens = await oidc.authorizationCodeGrant(
    config,
    callback,
    { pkceCodeVerifier: start.verifier, expectedState: start.state, expectedNonce: start.nonce },
    undefined,
    { DPoP },
  );
  return { tokens, DPoP };
}

async function thumbprintOf(keyPair: CryptoKeyPair): Promise<string> {
  return calculateJwkThumbprint(await exportJWK(keyPair.publicKey));
}

/** A DPoP proof made by hand, so the very same proof (same jti) can be sent twice. */
async function handMadeProof(
  keyPair: CryptoKeyPair,
  method: string,
  url: string,
  accessToken: string,
  options: { iat?: number; nonce?: string } = {},
): Promise<string> {
  const ath = Buffer.from(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(accessToken))).toString('base64url');
  return new SignJWT({ htm: method, htu: url, ath, jti: randomUUID(), ...(options.nonce ? { nonce: options.nonce } : {}) })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(keyPair.publicKey) })
    .setIssuedAt(options.iat)
    .sign(keyPair.privateKey);
}

describe('DPoP (RFC 9449)', () => {
  test('discovery advertises DPoP and its short list of proof algorithms', async () => {
    const config = await relyingParty(nyckel.url, 'dpop-app');
    expect(config.serverMetadata().dpop_signing_alg_values_supported).toEqual(['ES256', 'Ed25519', 'EdDSA']);
  });

  test('a dpop_bound_access_tokens client is refused tokens without a proof', async () => {
    const config = await relyingParty(nyckel.url, 'dpop-app');
    const { start, callback } = await signedIn(config);
    const refused = oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: start.verifier, expectedState: start.state, expectedNonce: start.nonce });
    await expect(refused).rejects.toMatchObject({ error: expect.stringMatching(/^(invalid_dpop_proof|invalid_request|invalid_grant)$/) });
  });

  test('with a proof the tokens are DPoP tokens bound to the key; userinfo needs the key, not a Bearer', async () => {
    const config = await relyingParty(nyckel.url, 'dpop-app');
    const keyPair = await oidc.randomDPoPKeyPair('ES256');
    const { tokens, DPoP } = await dpopTokens(config, keyPair);
    expect(tokens.token_type.toLowerCase()).toBe('dpop');

    const stored = await nyckel.provider().AccessToken.find(tokens.access_token);
    expect(stored?.jkt).toBe(await thumbprintOf(keyPair));

    const sub = tokens.claims()!.sub;
    await expect(oidc.fetchUserInfo(config, tokens.access_token, sub, { DPoP })).resolves.toMatchObject({ sub, email });

    const userinfo = config.serverMetadata().userinfo_endpoint!;
    const asBearer = await fetch(userinfo, { headers: { Authorization: `Bearer ${tokens.access_token}` } });
    expect(asBearer.status).toBe(401);
    const withOtherKey = await fetch(userinfo, {
      headers: {
        Authorization: `DPoP ${tokens.access_token}`,
        DPoP: await handMadeProof(await oidc.randomDPoPKeyPair('ES256'), 'GET', userinfo, tokens.access_token),
      },
    });
    expect(withOtherKey.status).toBe(401);
  });

  test('a proof sent a second time (same jti) is refused', async () => {
    const config = await relyingParty(nyckel.url, 'dpop-app');
    const keyPair = await oidc.randomDPoPKeyPair('ES256');
    const { tokens } = await dpopTokens(config, keyPair);
    const userinfo = config.serverMetadata().userinfo_endpoint!;
    const proof = await handMadeProof(keyPair, 'GET', userinfo, tokens.access_token);
    const headers = { Authorization: `DPoP ${tokens.access_token}`, DPoP: proof };
    expect((await fetch(userinfo, { headers })).status).toBe(200);
    const replayed = await fetch(userinfo, { headers });
    expect(replayed.status).toBe(401);
    expect(replayed.headers.get('www-authenticate')).toMatch(/^DPoP .*error="invalid_token"/);
    // The token itself is still good: only the proof's jti was spent.
    const fresh = { Authorization: `DPoP ${tokens.access_token}`, DPoP: await handMadeProof(keyPair, 'GET', userinfo, tokens.access_token) };
    expect((await fetch(userinfo, { headers: fresh })).status).toBe(200);
  });

  test('a proof whose iat is far off is answered with a nonce, and a proof with that nonce is taken', async () => {
    const config = await relyingParty(nyckel.url, 'dpop-app');
    const keyPair = await oidc.randomDPoPKeyPair('ES256');
    const { tokens } = await dpopTokens(config, keyPair);
    const userinfo = config.serverMetadata().userinfo_endpoint!;
    const old = Math.floor(Date.now() / 1000) - 600;
    const stale = await fetch(userinfo, {
      headers: { Authorization: `DPoP ${tokens.access_token}`, DPoP: await handMadeProof(keyPair, 'GET', userinfo, tokens.access_token, { iat: old }) },
    });
    expect(stale.status).toBe(401);
    expect(stale.headers.get('www-authenticate')).toMatch(/error="use_dpop_nonce"/);
    const nonce = stale.headers.get('dpop-nonce');
    expect(nonce).toBeTruthy();
    const withNonce = await fetch(userinfo, {
      headers: {
        Authorization: `DPoP ${tokens.access_token}`,
        DPoP: await handMadeProof(keyPair, 'GET', userinfo, tokens.access_token, { iat: old, nonce: nonce! }),
      },
    });
    expect(withNonce.status).toBe(200);
  });

  test("the public client's refresh token works only with the same key", async () => {
    const config = await relyingParty(nyckel.url, 'dpop-app');
    const keyPair = await oidc.randomDPoPKeyPair('ES256');
    const { tokens, DPoP } = await dpopTokens(config, keyPair);
    expect(tokens.refresh_token).toBeTruthy();

    const otherKey = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair('ES256'));
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!, undefined, { DPoP: otherKey })).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({
      error: expect.stringMatching(/^(invalid_dpop_proof|invalid_request|invalid_grant)$/),
    });

    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!, undefined, { DPoP });
    expect(refreshed.token_type.toLowerCase()).toBe('dpop');
    expect((await nyckel.provider().AccessToken.find(refreshed.access_token))?.jkt).toBe(await thumbprintOf(keyPair));
  });

  test('a client without dpop_bound_access_tokens still gets Bearer tokens', async () => {
    const config = await relyingParty(nyckel.url, 'spa');
    const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/spa-cb', scope: 'openid email' });
    const { callback } = await signInWithPassword(new FormBrowser(callbackStop), start, { email, password: TEST_PASSWORD }, { consent: false });
    const tokens = await oidc.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: start.verifier,
      expectedState: start.state,
      expectedNonce: start.nonce,
    });
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    const stored = await nyckel.provider().AccessToken.find(tokens.access_token);
    expect(stored?.jkt).toBeUndefined();
  });
});
