import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import pino from 'pino';
import { FormBrowser } from '../support/browser.ts';
import { startTestNyckel, TEST_PASSWORD, testClientsYaml, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, signInWithPassword, startAuthorization } from '../support/relying-party.ts';

/**
 * A 500 is never silent: an error oidc-provider did not expect is logged (pino) with the request's id,
 * which the response carries in X-Request-Id; also after a reload has built a new provider.
 */
let nyckel: TestNyckel;
let spa: oidc.Configuration;
let clientsDir: string;
let accessToken: string;
const logLines: Array<Record<string, unknown> & { level: number; msg: string }> = [];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

beforeAll(async () => {
  // A clients file on disk, so that reload() reads the same clients.
  clientsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nyckel-clients-'));
  const clientsFile = path.join(clientsDir, 'clients.yaml');
  fs.writeFileSync(clientsFile, testClientsYaml);
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _encoding, done) {
        logLines.push(JSON.parse(String(chunk)));
        done();
      },
    }),
  );
  nyckel = await startTestNyckel({ logger, env: { NYCKEL_CLIENTS: clientsFile, NYCKEL_TRUST_PROXY: 'true' } });
  spa = await relyingParty(nyckel.url, 'spa');
  const email = 'server-error@example.test';
  await nyckel.accounts.create({ email, password: TEST_PASSWORD });
  const start = await startAuthorization(spa, { redirect_uri: 'http://localhost:4000/spa-cb', scope: 'openid email' });
  const { callback } = await signInWithPassword(new FormBrowser((url) => url.port === '4000'), start, { email, password: TEST_PASSWORD });
  accessToken = (await oidc.authorizationCodeGrant(spa, callback, { pkceCodeVerifier: start.verifier, expectedState: start.state, expectedNonce: start.nonce }))
    .access_token;
});
afterAll(async () => {
  await nyckel?.stop();
  fs.rmSync(clientsDir, { recursive: true, force: true });
});

/** Userinfo while reading the claims fails in a way nobody planned for: oidc-provider's server_error. */
async function userinfoWithBrokenClaims(headers: Record<string, string> = {}) {
  const claims = nyckel.accounts.claims;
  nyckel.accounts.claims = async () => {
    throw new Error('forced failure while reading claims');
  };
  try {
    return await fetch(new URL('/me', nyckel.url), { headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json', ...headers } });
  } finally {
    nyckel.accounts.claims = claims;
  }
}

const serverErrorLogged = (requestId: string) =>
  logLines.filter((line) => line.msg === 'oidc-provider server_error' && line.requestId === requestId && line.level === 50);

describe('oidc-provider server errors', () => {
  test("are logged with the request id the response carries; a proxy's X-Request-Id is kept", async () => {
    const response = await userinfoWithBrokenClaims({ 'x-request-id': 'proxy-trace-0001' });
    expect(response.status).toBe(500);
    expect(await response.json()).toMatchObject({ error: 'server_error' });
    expect(response.headers.get('x-request-id')).toBe('proxy-trace-0001');
    const [line] = serverErrorLogged('proxy-trace-0001');
    expect(line).toMatchObject({ method: 'GET', path: '/me', route: 'userinfo', err: { message: 'forced failure while reading claims' } });
    // Not the bearer token, in any form.
    expect(JSON.stringify(line)).not.toContain(accessToken);
  });

  test('without one (or with one that could forge a log line) the request gets a random id', async () => {
    for (const given of [undefined, 'two\nlines', 'x'.repeat(200)]) {
      const response = await userinfoWithBrokenClaims(given ? { 'x-request-id': given.replace('\n', '%0A') } : {});
      const id = response.headers.get('x-request-id')!;
      expect(id).toMatch(UUID);
      expect(serverErrorLogged(id)).toHaveLength(1);
    }
  });

  test('every response has a request id, not just the failing ones', async () => {
    const discovery = await fetch(new URL('/.well-known/openid-configuration', nyckel.url));
    const home = await fetch(new URL('/healthz', nyckel.url));
    expect(discovery.headers.get('x-request-id')).toMatch(UUID);
    expect(home.headers.get('x-request-id')).toMatch(UUID);
    expect(discovery.headers.get('x-request-id')).not.toBe(home.headers.get('x-request-id'));
  });

  test('are still logged by the provider a reload builds', async () => {
    const before = nyckel.provider();
    await nyckel.reload();
    expect(nyckel.provider()).not.toBe(before);
    const response = await userinfoWithBrokenClaims({ 'x-request-id': 'after-reload-0001' });
    expect(response.status).toBe(500);
    expect(serverErrorLogged('after-reload-0001')).toHaveLength(1);
  });
});
