import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pino from 'pino';
import * as oidc from 'openid-client';
import { decodeProtectedHeader } from 'jose';
import { rotateSigningKeys } from '../../src/keys/signing-keys.ts';
import { FormBrowser } from '../support/browser.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, signInWithPassword, startAuthorization } from '../support/relying-party.ts';

let nyckel: TestNyckel;
let logs = '';
const email = 'keys.logs@example.test';

beforeAll(async () => {
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logs += chunk;
      done();
    },
  });
  nyckel = await startTestNyckel({ logger: pino({ level: 'trace' }, sink) });
  await nyckel.accounts.create({ email, password: TEST_PASSWORD });
});
afterAll(() => nyckel?.stop());

async function signIn() {
  const config = await relyingParty(nyckel.url, 'spa');
  const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/spa-cb', scope: 'openid offline_access', prompt: 'consent' });
  const { callback } = await signInWithPassword(new FormBrowser((u) => u.port === '4000'), start, { email, password: TEST_PASSWORD });
  const tokens = await oidc.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: start.verifier,
    expectedState: start.state,
    expectedNonce: start.nonce,
  });
  return { config, tokens, code: callback.searchParams.get('code')! };
}

describe('signing key rotation on a running server', () => {
  test('new tokens are signed with the new key; the old key stays published', async () => {
    const before = await signIn();
    const oldKid = decodeProtectedHeader(before.tokens.id_token!).kid!;
    const rotation = await rotateSigningKeys(nyckel.db.prisma, nyckel.box, 3600);
    await nyckel.sweep();

    const jwks = (await (await fetch(`${nyckel.url}/jwks`)).json()) as { keys: Array<{ kid: string }> };
    expect(jwks.keys.map((k) => k.kid)).toEqual(expect.arrayContaining([oldKid, ...rotation.added]));
    const after = await signIn();
    const newKid = decodeProtectedHeader(after.tokens.id_token!).kid!;
    expect(rotation.added).toContain(newKid);
    expect(newKid).not.toBe(oldKid);
    // The refresh token issued before the rotation still works.
    await expect(oidc.refreshTokenGrant(before.config, before.tokens.refresh_token!)).resolves.toBeTruthy();
  });
});

describe('logout after a rotation', () => {
  test('an ID token signed by a retired key, no longer published, still works as id_token_hint', async () => {
    const browser = new FormBrowser((u) => u.port === '4000');
    const config = await relyingParty(nyckel.url, 'spa');
    const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/spa-cb' });
    const { callback } = await signInWithPassword(browser, start, { email, password: TEST_PASSWORD });
    const tokens = await oidc.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: start.verifier,
      expectedState: start.state,
      expectedNonce: start.nonce,
    });
    const oldKid = decodeProtectedHeader(tokens.id_token!).kid!;

    // Retired two hours ago and published for one: past every token's lifetime, inside the session's (NYCKEL_SESSION_TTL).
    const rotation = await rotateSigningKeys(nyckel.db.prisma, nyckel.box, 3600, new Date(Date.now() - 2 * 3600_000));
    expect(rotation.retired).toContain(oldKid);
    await nyckel.sweep();
    const jwks = (await (await fetch(`${nyckel.url}/jwks`)).json()) as { keys: Array<{ kid: string }> };
    expect(jwks.keys.map((k) => k.kid)).not.toContain(oldKid);
    expect(jwks.keys.map((k) => k.kid)).toEqual(expect.arrayContaining(rotation.added));

    const logout = oidc.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: 'http://localhost:4000/spa-bye' });
    const confirm = await browser.go(logout.toString());
    expect(confirm.status).toBe(200);
    expect(confirm.html).not.toContain('could not validate id_token_hint');
    expect(confirm.html).toContain('op.logoutForm');
    const done = await browser.submit(confirm, /\/session\/end\/confirm$/, { logout: 'yes' });
    expect(done.url).toBe('http://localhost:4000/spa-bye');
  });
});

describe('logs', () => {
  test('structured logs carry no passwords, codes or tokens', async () => {
    const { tokens, code } = await signIn();
    expect(logs).toContain('"audit":"login.succeeded"');
    for (const secret of [TEST_PASSWORD, code, tokens.access_token, tokens.refresh_token!, tokens.id_token!]) {
      expect(logs).not.toContain(secret);
    }
  });
});
