// Back-channel logout when Nyckel ends sessions itself (not at end_session): the account pages' "end this
// session" and "end my other sessions", a new password, and the help desk disabling a user. Each app of
// each ended session with a backchannel_logout_uri gets a logout token naming that session's sid.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, decodeJwt, jwtVerify, type JWTPayload } from 'jose';
import { parseClientsFile } from '../../src/clients/clients-file.ts';
import { FormBrowser } from '../support/browser.ts';
import { startTestNyckel, TEST_PASSWORD, testClientsYaml, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, signInWithPassword, startAuthorization } from '../support/relying-party.ts';

/** The apps' back-channel logout endpoints: every logout token, verified against Nyckel's JWKS. */
let receiver: Server;
let received: Array<{ path: string; token: string }> = [];
let answerStatus = 200;
let logs = '';
let nyckel: TestNyckel;
let counter = 0;
const callbackStop = (url: URL) => url.port === '4000';

function withBackchannelLogout(yaml: string, base: string): string {
  const lines = {
    web: '    post_logout_redirect_uris: [http://localhost:4000/bye]\n',
    spa: '    post_logout_redirect_uris: [http://localhost:4000/spa-bye]\n',
  };
  let changed = yaml;
  for (const [client, line] of Object.entries(lines)) {
    if (!changed.includes(line)) throw new Error(`test clients changed: ${client} has no post_logout_redirect_uris line`);
    changed = changed.replace(line, `${line}    backchannel_logout_uri: ${base}/${client}\n    backchannel_logout_session_required: true\n`);
  }
  return changed;
}

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      received.push({ path: req.url!, token: new URLSearchParams(body).get('logout_token') ?? '' });
      res.writeHead(answerStatus, { 'cache-control': 'no-store' }).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/backchannel`;
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logs += chunk;
      done();
    },
  });
  nyckel = await startTestNyckel({
    logger: pino({ level: 'info' }, sink),
    clients: parseClientsFile(withBackchannelLogout(testClientsYaml, base), 'test-clients.yaml'),
  });
});
beforeEach(() => {
  received = [];
});
afterAll(async () => {
  await nyckel?.stop();
  receiver?.closeAllConnections();
  await new Promise((resolve) => receiver?.close(resolve));
});

/** A user whose only address is unverified: the account pages then ask for no second factor (as in test/flow/account.test.ts). */
async function newUser() {
  const email = `ended-session${++counter}@example.test`;
  const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD });
  await nyckel.db.prisma.userEmail.updateMany({ where: { userId: user.id }, data: { verifiedAt: null } });
  return { email, user };
}

/** In a browser of its own, the user signs in to "web" (with consent) and then "spa"; their ID tokens' claims. */
async function appsSession(email: string) {
  const browser = new FormBrowser(callbackStop);
  const web = await relyingParty(nyckel.url, 'web', 'web-secret-web-secret-0001');
  const webStart = await startAuthorization(web, { redirect_uri: 'http://localhost:4000/cb' });
  const { callback } = await signInWithPassword(browser, webStart, { email, password: TEST_PASSWORD });
  const webTokens = await oidc.authorizationCodeGrant(web, callback, {
    pkceCodeVerifier: webStart.verifier,
    expectedState: webStart.state,
    expectedNonce: webStart.nonce,
  });
  const spa = await relyingParty(nyckel.url, 'spa');
  const spaStart = await startAuthorization(spa, { redirect_uri: 'http://localhost:4000/spa-cb' });
  const spaCallback = await browser.go(spaStart.url.toString());
  const spaTokens = await oidc.authorizationCodeGrant(spa, new URL(spaCallback.url), {
    pkceCodeVerifier: spaStart.verifier,
    expectedState: spaStart.state,
    expectedNonce: spaStart.nonce,
  });
  return { browser, web: decodeJwt(webTokens.id_token!), spa: decodeJwt(spaTokens.id_token!) };
}

/** In another browser, the user signs in to the account pages; their overview. */
async function accountPages(email: string) {
  const browser = new FormBrowser(callbackStop);
  const login = await browser.go(new URL('/account', nyckel.url).toString());
  await browser.submit(login, '/login', { email, password: TEST_PASSWORD });
  const overview = await browser.go(new URL('/account', nyckel.url).toString());
  expect(overview.url).toBe(new URL('/account', nyckel.url).toString());
  return { browser, overview };
}

/** Each logout token received, verified (signature by Nyckel's keys, issuer, audience = the path's app, type). */
async function verifiedTokens(): Promise<JWTPayload[]> {
  const jwks = createRemoteJWKSet(new URL(`${nyckel.url}/jwks`));
  return Promise.all(
    received.map(async ({ path, token }) => {
      const audience = path.split('/').pop()!;
      const { payload } = await jwtVerify(token, jwks, { issuer: nyckel.url, audience, typ: 'logout+jwt' });
      expect(payload.events).toEqual({ 'http://schemas.openid.net/event/backchannel-logout': {} });
      expect(typeof payload.jti).toBe('string');
      return payload;
    }),
  );
}

/** What the apps of the session were told: one token each, naming the user and that app's sid. */
async function expectToldOf(session: { web: JWTPayload; spa: JWTPayload }) {
  const told = (await verifiedTokens()).map(({ aud, sub, sid }) => ({ aud, sub, sid }));
  expect(told.sort((a, b) => String(a.aud).localeCompare(String(b.aud)))).toEqual([
    { aud: 'spa', sub: session.spa.sub, sid: session.spa.sid },
    { aud: 'web', sub: session.web.sub, sid: session.web.sid },
  ]);
}

const sessionsOf = (userId: string) => nyckel.db.prisma.oidcModel.count({ where: { type: 'Session', payload: { path: ['accountId'], equals: userId } } });

describe('the account pages', () => {
  test('"end my other sessions" tells the apps of each ended session', async () => {
    const { email, user } = await newUser();
    const apps = await appsSession(email);
    const { browser, overview } = await accountPages(email);
    received = [];
    await browser.submit(overview, '/account/sessions/end-others', {});
    await expectToldOf(apps);
    expect(await sessionsOf(user.id)).toBe(1);
  });

  test('"end this session" tells the apps of that session', async () => {
    const { email, user } = await newUser();
    const apps = await appsSession(email);
    const { browser, overview } = await accountPages(email);
    const action = /action="(\/account\/sessions\/[A-Za-z0-9_-]+\/end)"/.exec(overview.html)![1];
    received = [];
    await browser.submit(overview, action, {});
    await expectToldOf(apps);
    expect(await sessionsOf(user.id)).toBe(1);
  });

  test('a new password signs out everywhere else, and the apps are told', async () => {
    const { email } = await newUser();
    const apps = await appsSession(email);
    const { browser } = await accountPages(email);
    const form = await browser.go(new URL('/account/password', nyckel.url).toString());
    received = [];
    const done = await browser.submit(form, '/account/password', {
      current: TEST_PASSWORD,
      password: 'a whole new passphrase 2026',
      confirm: 'a whole new passphrase 2026',
    });
    expect(done.url).toBe(new URL('/account?done=password_changed', nyckel.url).toString());
    await expectToldOf(apps);
  });
});

describe('the help desk', () => {
  const adminToken = async () => {
    const helpdesk = await relyingParty(nyckel.url, 'helpdesk', 'helpdesk-secret-helpdesk-01');
    return (await oidc.clientCredentialsGrant(helpdesk, { scope: 'nyckel:admin', resource: `${nyckel.url}/admin` })).access_token;
  };
  const disable = async (userId: string) =>
    fetch(`${nyckel.url}/admin/v1/users/${userId}/disable`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await adminToken()}`, accept: 'application/json' },
    });

  test('disabling a user tells the apps of every session', async () => {
    const { email, user } = await newUser();
    const first = await appsSession(email);
    const second = await appsSession(email);
    received = [];
    expect((await disable(user.id)).status).toBe(200);
    const told = (await verifiedTokens()).map(({ aud, sid }) => `${String(aud)} ${String(sid)}`).sort();
    expect(told).toEqual([first.web, first.spa, second.web, second.spa].map(({ aud, sid }) => `${String(aud)} ${String(sid)}`).sort());
    expect(await sessionsOf(user.id)).toBe(0);
  });

  test('an app that fails to answer does not stop the revocation; Nyckel logs a warning naming it', async () => {
    const { email, user } = await newUser();
    await appsSession(email);
    answerStatus = 500;
    logs = '';
    try {
      expect((await disable(user.id)).status).toBe(200);
    } finally {
      answerStatus = 200;
    }
    expect(received).toHaveLength(2);
    expect(await sessionsOf(user.id)).toBe(0);
    const warned = logs
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { msg: string; clientId?: string })
      .filter((entry) => entry.msg === 'back-channel logout failed')
      .map((entry) => entry.clientId)
      .sort();
    expect(warned).toEqual(['spa', 'web']);
  });
});
