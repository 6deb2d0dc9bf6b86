import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { parseClientsFile, tokenEndpointAuthMethods } from '../../src/clients/clients-file.ts';
import { FormBrowser, textOf, type Page } from '../support/browser.ts';
import { codeIn, latestMail } from '../support/mail.ts';
import { startTestNyckel, TEST_PASSWORD, testClientsYaml, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, signInWithPassword, startAuthorization, type AuthorizationStart } from '../support/relying-party.ts';

/**
 * Jest's Node environment lends the test realm the host's structuredClone, whose objects belong to the
 * host realm; oidc-provider clones static clients with it and then refuses inline JWKS keys that are not
 * plain objects of its own realm (constructor === Object). One realm in Node itself: this puts the
 * clones' plain objects back into the test realm.
 */
const hostClone = globalThis.structuredClone;
function intoThisRealm(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(intoThisRealm);
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) !== Object.prototype && value.constructor?.name === 'Object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, intoThisRealm(item)]));
  }
  return value;
}
globalThis.structuredClone = (value: unknown, options?: StructuredSerializeOptions) => intoThisRealm(hostClone(value, options));

let nyckel: TestNyckel;
let jwksServer: http.Server;
const email = 'relying.parties@example.test';
const callbackStop = (url: URL) => url.port === '4000';
const inlineKeys = generateKeyPair('ES256');
const servedKeys = generateKeyPair('RS256');

/** Two private_key_jwt clients: one with its public key inline, one with a jwks_uri served by this test. */
function withKeyClients(inline: JWK, jwksUri: string): string {
  return testClientsYaml.replace(
    'resources:',
    `  - client_id: inline-keys
    name: Inline keys job
    grant_types: [client_credentials]
    token_endpoint_auth_method: private_key_jwt
    jwks: ${JSON.stringify({ keys: [inline] })}
    scopes: [reports:read]
  - client_id: served-keys
    name: Served keys job
    grant_types: [client_credentials]
    token_endpoint_auth_method: private_key_jwt
    jwks_uri: ${jwksUri}
    scopes: [reports:read]
resources:`,
  );
}

beforeAll(async () => {
  const served = { keys: [{ ...(await exportJWK((await servedKeys).publicKey)), kid: 'served-1', alg: 'RS256', use: 'sig' }] };
  jwksServer = http.createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(served));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  const jwksUri = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`;
  const inline = { ...(await exportJWK((await inlineKeys).publicKey)), kid: 'inline-1', alg: 'ES256', use: 'sig' };
  nyckel = await startTestNyckel({ clients: parseClientsFile(withKeyClients(inline, jwksUri), 'test-clients.yaml') });
  await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
});
afterAll(async () => {
  globalThis.structuredClone = hostClone;
  jwksServer?.close();
  await nyckel?.stop();
});

async function tokensFrom(config: oidc.Configuration, start: AuthorizationStart, callback: string) {
  expect(callback).toContain('code=');
  return oidc.authorizationCodeGrant(config, new URL(callback), { pkceCodeVerifier: start.verifier, expectedState: start.state, expectedNonce: start.nonce });
}

describe('discovery advertises what a client can use', () => {
  test('the clients file’s authentication methods, the claims parameter, DPoP’s short list of algorithms', async () => {
    const discovery = (await (await fetch(`${nyckel.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect([...(discovery.token_endpoint_auth_methods_supported as string[])].sort()).toEqual([...tokenEndpointAuthMethods].sort());
    expect(discovery.claims_parameter_supported).toBe(true);
    expect(discovery.dpop_signing_alg_values_supported).toEqual(['ES256', 'Ed25519', 'EdDSA']);
    expect(discovery.id_token_signing_alg_values_supported).toEqual(expect.arrayContaining(['RS256', 'ES256']));
  });
});

describe('private_key_jwt', () => {
  async function keyClient(clientId: string, privateKey: CryptoKey) {
    return oidc.discovery(new URL(nyckel.url), clientId, undefined, oidc.PrivateKeyJwt(privateKey), { execute: [oidc.allowInsecureRequests] });
  }

  test('a client with its public key inline in the clients file', async () => {
    const tokens = await oidc.clientCredentialsGrant(await keyClient('inline-keys', (await inlineKeys).privateKey), { scope: 'reports:read' });
    expect(tokens.access_token).toBeTruthy();
  });

  test('a client whose keys Nyckel fetches from its jwks_uri', async () => {
    const tokens = await oidc.clientCredentialsGrant(await keyClient('served-keys', (await servedKeys).privateKey), { scope: 'reports:read' });
    expect(tokens.access_token).toBeTruthy();
  });

  test('an assertion signed by another key is refused', async () => {
    const stranger = await generateKeyPair('ES256');
    await expect(oidc.clientCredentialsGrant(await keyClient('inline-keys', stranger.privateKey), { scope: 'reports:read' })).rejects.toMatchObject({
      error: 'invalid_client',
    });
  });
});

describe('step-up by an essential acr claim (the claims parameter)', () => {
  const essential = (values: string[]) => JSON.stringify({ id_token: { acr: { essential: true, values } } });

  test('asks for the second factor inside the session; the ID token carries the acr asked for', async () => {
    const config = await relyingParty(nyckel.url, 'spa');
    const browser = new FormBrowser(callbackStop);
    const first = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/spa-cb' });
    const { callback } = await signInWithPassword(browser, first, { email, password: TEST_PASSWORD }, { consent: false });
    expect((await tokensFrom(config, first, callback.toString())).claims()!.acr).toBe('urn:nyckel:acr:password');

    const stepUp = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/spa-cb', claims: essential(['urn:nyckel:acr:mfa']) });
    let page: Page = await browser.go(stepUp.url.toString());
    expect(page.url).not.toContain('code=');
    expect(page.html).not.toContain('name="password"');
    page = await browser.go(page.url.replace(/\/mfa(\/[a-z-]+)?$/, '/mfa/email-code'));
    page = await browser.submit(page, '/start', { target: /value="([0-9a-f-]{36})"/.exec(page.html)![1] });
    page = await browser.submit(page, '/verify', { code: codeIn((await latestMail(nyckel.db.prisma, email)).text) });
    const claims = (await tokensFrom(config, stepUp, page.url)).claims()!;
    expect(claims.acr).toBe('urn:nyckel:acr:mfa');

    // A class the session cannot be brought to by signing in is refused, not asked for in a loop.
    const unmet = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/spa-cb', claims: essential(['urn:nyckel:acr:password']) });
    const refused = new URL((await browser.go(unmet.url.toString())).url);
    expect(refused.searchParams.get('error')).toBe('unmet_authentication_requirements');
  });
});

describe('claims asked for one by one (the claims parameter)', () => {
  test('a third-party client asking for the email claim alone: the consent page says so, and the ID token has it', async () => {
    const config = await relyingParty(nyckel.url, 'web', 'web-secret-web-secret-0001');
    const browser = new FormBrowser(callbackStop);
    const start = await startAuthorization(config, {
      redirect_uri: 'http://localhost:4000/cb',
      claims: JSON.stringify({ id_token: { email: null } }),
      ui_locales: 'en',
    });
    let page = await browser.go(start.url.toString());
    page = await browser.submit(page, '/login', { email, password: TEST_PASSWORD });
    expect(textOf(page.html)).toContain('See your email address');
    page = await browser.submit(page, '/consent', { decision: 'allow' });
    expect((await tokensFrom(config, start, page.url)).claims()!.email).toBe(email);
  });
});

describe('refresh tokens for offline_access', () => {
  test('a first-party client gets one without prompt=consent, also through a pushed request', async () => {
    const config = await relyingParty(nyckel.url, 'spa');
    const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/spa-cb', scope: 'openid offline_access' });
    const { callback } = await signInWithPassword(new FormBrowser(callbackStop), start, { email, password: TEST_PASSWORD }, { consent: false });
    const tokens = await tokensFrom(config, start, callback.toString());
    expect(tokens.scope?.split(' ')).toContain('offline_access');
    expect(tokens.refresh_token).toBeTruthy();
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).resolves.toMatchObject({ access_token: expect.any(String) });

    const pushed = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/spa-cb', scope: 'openid offline_access' });
    const pushedUrl = await oidc.buildAuthorizationUrlWithPAR(config, Object.fromEntries(pushed.url.searchParams));
    const viaPar = await signInWithPassword(
      new FormBrowser(callbackStop),
      { ...pushed, url: pushedUrl },
      { email, password: TEST_PASSWORD },
      { consent: false },
    );
    expect((await tokensFrom(config, pushed, viaPar.callback.toString())).refresh_token).toBeTruthy();
  });

  test('a third-party client still needs prompt=consent', async () => {
    const config = await relyingParty(nyckel.url, 'web', 'web-secret-web-secret-0001');
    const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/cb', scope: 'openid offline_access' });
    const { callback } = await signInWithPassword(new FormBrowser(callbackStop), start, { email, password: TEST_PASSWORD });
    const tokens = await tokensFrom(config, start, callback.toString());
    expect(tokens.refresh_token).toBeUndefined();
    expect(tokens.scope?.split(' ') ?? []).not.toContain('offline_access');
  });
});
