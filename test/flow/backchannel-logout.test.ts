import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { parseClientsFile } from '../../src/clients/clients-file.ts';
import { FormBrowser } from '../support/browser.ts';
import { startTestNyckel, TEST_PASSWORD, testClientsYaml, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, signInWithPassword, startAuthorization } from '../support/relying-party.ts';

/** The "spa" relying party's back-channel logout endpoint: records every logout token posted to it. */
let receiver: Server;
let received: Array<{ contentType: string | undefined; token: string | null }> = [];
let answerStatus = 200;
let logs = '';
let nyckel: TestNyckel;
const email = 'backchannel.logout@example.test';
/** Its only address is unverified: the account pages then ask for no second factor (as in test/flow/account.test.ts). */
const accountPagesEmail = 'backchannel.account@example.test';

function withBackchannelLogout(yaml: string, uri: string): string {
  const spaLine = '    post_logout_redirect_uris: [http://localhost:4000/spa-bye]\n';
  if (!yaml.includes(spaLine)) throw new Error('test clients changed: spa has no post_logout_redirect_uris line');
  return yaml.replace(spaLine, `${spaLine}    backchannel_logout_uri: ${uri}\n    backchannel_logout_session_required: true\n`);
}

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      received.push({ contentType: req.headers['content-type'], token: new URLSearchParams(body).get('logout_token') });
      res.writeHead(answerStatus, { 'cache-control': 'no-store' }).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const uri = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/backchannel-logout`;
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logs += chunk;
      done();
    },
  });
  nyckel = await startTestNyckel({
    logger: pino({ level: 'info' }, sink),
    clients: parseClientsFile(withBackchannelLogout(testClientsYaml, uri), 'test-clients.yaml'),
  });
  await nyckel.accounts.create({ email, password: TEST_PASSWORD });
  const user = await nyckel.accounts.create({ email: accountPagesEmail, password: TEST_PASSWORD });
  await nyckel.db.prisma.userEmail.updateMany({ where: { userId: user.id }, data: { verifiedAt: null } });
});
afterAll(async () => {
  await nyckel?.stop();
  receiver?.closeAllConnections();
  await new Promise((resolve) => receiver?.close(resolve));
});

/** Signs in to "web" (with consent) and then to "spa" in the same browser session, without a second password. */
async function signInToBoth(as = email) {
  const browser = new FormBrowser((u) => u.port === '4000');
  const web = await relyingParty(nyckel.url, 'web', 'web-secret-web-secret-0001');
  const webStart = await startAuthorization(web, { redirect_uri: 'http://localhost:4000/cb' });
  const { callback } = await signInWithPassword(browser, webStart, { email: as, password: TEST_PASSWORD });
  const webTokens = await oidc.authorizationCodeGrant(web, callback, {
    pkceCodeVerifier: webStart.verifier,
    expectedState: webStart.state,
    expectedNonce: webStart.nonce,
  });

  const spa = await relyingParty(nyckel.url, 'spa');
  const spaStart = await startAuthorization(spa, { redirect_uri: 'http://localhost:4000/spa-cb' });
  const spaCallback = await browser.go(spaStart.url.toString());
  expect(spaCallback.url).toMatch(/^http:\/\/localhost:4000\/spa-cb\?/);
  const spaTokens = await oidc.authorizationCodeGrant(spa, new URL(spaCallback.url), {
    pkceCodeVerifier: spaStart.verifier,
    expectedState: spaStart.state,
    expectedNonce: spaStart.nonce,
  });
  return { browser, web, webTokens, spaTokens };
}

describe('back-channel logout', () => {
  test('discovery advertises back-channel logout with sessions', async () => {
    const discovery = (await (await fetch(`${nyckel.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(discovery.backchannel_logout_supported).toBe(true);
    expect(discovery.backchannel_logout_session_supported).toBe(true);
  });

  test('signing out at one app posts a verifiable logout token to the other app of the session', async () => {
    received = [];
    const { browser, web, webTokens, spaTokens } = await signInToBoth();
    const spaIdToken = decodeJwt(spaTokens.id_token!);
    expect(typeof spaIdToken.sid).toBe('string');

    const logout = oidc.buildEndSessionUrl(web, { id_token_hint: webTokens.id_token!, post_logout_redirect_uri: 'http://localhost:4000/bye' });
    const confirm = await browser.go(logout.toString());
    const done = await browser.submit(confirm, /\/session\/end\/confirm$/, { logout: 'yes' });
    expect(done.url).toBe('http://localhost:4000/bye');

    expect(received).toHaveLength(1);
    expect(received[0].contentType).toBe('application/x-www-form-urlencoded');
    const jwks = createRemoteJWKSet(new URL(`${nyckel.url}/jwks`));
    const { payload, protectedHeader } = await jwtVerify(received[0].token!, jwks, { issuer: nyckel.url, audience: 'spa', typ: 'logout+jwt' });
    expect(protectedHeader.alg).toBe('RS256');
    expect(payload.sub).toBe(spaIdToken.sub);
    expect(payload.sid).toBe(spaIdToken.sid);
    expect(payload.events).toEqual({ 'http://schemas.openid.net/event/backchannel-logout': {} });
    expect(typeof payload.jti).toBe('string');
    expect(typeof payload.iat).toBe('number');
    expect(payload).not.toHaveProperty('nonce');
  });

  test('"stay signed in" signs out of that app only: the other app is not told', async () => {
    received = [];
    const { browser, web, webTokens } = await signInToBoth();
    const logout = oidc.buildEndSessionUrl(web, { id_token_hint: webTokens.id_token!, post_logout_redirect_uri: 'http://localhost:4000/bye' });
    const confirm = await browser.go(logout.toString());
    await browser.submit(confirm, /\/session\/end\/confirm$/, {});
    expect(received).toEqual([]);
  });
});

describe('signing out on the account pages', () => {
  test('"Sign out" there also tells the apps of the session', async () => {
    received = [];
    const { browser, spaTokens } = await signInToBoth(accountPagesEmail);
    const account = await browser.go(new URL('/account', nyckel.url).toString());
    expect(account.status).toBe(200);
    expect(account.url).toBe(new URL('/account', nyckel.url).toString());
    const confirm = await browser.submit(account, '/account/logout', {});
    const done = await browser.submit(confirm, /\/session\/end\/confirm$/, { logout: 'yes' });
    expect(new URL(done.url).pathname).toBe('/account/signed-out');
    expect(received).toHaveLength(1);
    const payload = decodeJwt(received[0].token!);
    expect(payload.aud).toBe('spa');
    expect(payload.sid).toBe(decodeJwt(spaTokens.id_token!).sid);
  });
});

describe('a failing back-channel endpoint', () => {
  test('does not stop the sign-out; Nyckel logs a warning naming the client', async () => {
    received = [];
    answerStatus = 500;
    try {
      const { browser, web, webTokens } = await signInToBoth();
      const logout = oidc.buildEndSessionUrl(web, { id_token_hint: webTokens.id_token!, post_logout_redirect_uri: 'http://localhost:4000/bye' });
      const confirm = await browser.go(logout.toString());
      const done = await browser.submit(confirm, /\/session\/end\/confirm$/, { logout: 'yes' });
      expect(done.url).toBe('http://localhost:4000/bye');
      expect(received).toHaveLength(1);
      const warning = logs
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { msg: string; clientId?: string })
        .find((entry) => entry.msg === 'back-channel logout failed');
      expect(warning?.clientId).toBe('spa');
    } finally {
      answerStatus = 200;
    }
  });
});

describe('clients file', () => {
  test('a back-channel logout URI must be https, or http on localhost', () => {
    const yaml = withBackchannelLogout(testClientsYaml, 'http://rp.example.test/logout');
    expect(() => parseClientsFile(yaml, 'clients.yaml')).toThrow(/backchannel_logout_uri.*must use https/s);
  });
});
