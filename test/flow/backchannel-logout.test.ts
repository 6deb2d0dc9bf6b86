import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { parseClientsFile } from '../../src/clients/clients-file.ts';
import { startTestNyckel, TEST_PASSWORD, testClientsYaml, type TestNyckel } from '../support/nyckel.ts';
import { capturedLogs, signInToWebAndSpa, startLogoutReceiver } from '../support/logout.ts';

/** The "spa" relying party's back-channel logout endpoint: records every logout token posted to it. */
let receiver: Awaited<ReturnType<typeof startLogoutReceiver>>;
const logs = capturedLogs();
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
  receiver = await startLogoutReceiver();
  const uri = `http://127.0.0.1:${receiver.port}/backchannel-logout`;
  nyckel = await startTestNyckel({
    logger: logs.logger,
    clients: parseClientsFile(withBackchannelLogout(testClientsYaml, uri), 'test-clients.yaml'),
  });
  await nyckel.accounts.create({ email, password: TEST_PASSWORD });
  const user = await nyckel.accounts.create({ email: accountPagesEmail, password: TEST_PASSWORD });
  await nyckel.db.prisma.userEmail.updateMany({ where: { userId: user.id }, data: { verifiedAt: null } });
});
afterAll(async () => {
  await nyckel?.stop();
  await receiver?.close();
});

const signInToBoth = (as = email) => signInToWebAndSpa(nyckel.url, as);

describe('back-channel logout', () => {
  test('discovery advertises back-channel logout with sessions', async () => {
    const discovery = (await (await fetch(`${nyckel.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(discovery.backchannel_logout_supported).toBe(true);
    expect(discovery.backchannel_logout_session_supported).toBe(true);
  });

  test('signing out at one app posts a verifiable logout token to the other app of the session', async () => {
    receiver.received.length = 0;
    const { browser, web, webTokens, spaTokens } = await signInToBoth();
    const spaIdToken = decodeJwt(spaTokens.id_token!);
    expect(typeof spaIdToken.sid).toBe('string');

    const logout = oidc.buildEndSessionUrl(web, { id_token_hint: webTokens.id_token!, post_logout_redirect_uri: 'http://localhost:4000/bye' });
    const confirm = await browser.go(logout.toString());
    const done = await browser.submit(confirm, /\/session\/end\/confirm$/, { logout: 'yes' });
    expect(done.url).toBe('http://localhost:4000/bye');

    expect(receiver.tokens()).toHaveLength(1);
    expect(receiver.tokens()[0].contentType).toBe('application/x-www-form-urlencoded');
    const jwks = createRemoteJWKSet(new URL(`${nyckel.url}/jwks`));
    const { payload, protectedHeader } = await jwtVerify(receiver.tokens()[0].token, jwks, { issuer: nyckel.url, audience: 'spa', typ: 'logout+jwt' });
    expect(protectedHeader.alg).toBe('RS256');
    expect(payload.sub).toBe(spaIdToken.sub);
    expect(payload.sid).toBe(spaIdToken.sid);
    expect(payload.events).toEqual({ 'http://schemas.openid.net/event/backchannel-logout': {} });
    expect(typeof payload.jti).toBe('string');
    expect(typeof payload.iat).toBe('number');
    expect(payload).not.toHaveProperty('nonce');
  });

  test('"stay signed in" signs out of that app only: the other app is not told', async () => {
    receiver.received.length = 0;
    const { browser, web, webTokens } = await signInToBoth();
    const logout = oidc.buildEndSessionUrl(web, { id_token_hint: webTokens.id_token!, post_logout_redirect_uri: 'http://localhost:4000/bye' });
    const confirm = await browser.go(logout.toString());
    await browser.submit(confirm, /\/session\/end\/confirm$/, {});
    expect(receiver.tokens()).toEqual([]);
  });
});

describe('signing out on the account pages', () => {
  test('"Sign out" there also tells the apps of the session', async () => {
    receiver.received.length = 0;
    const { browser, spaTokens } = await signInToBoth(accountPagesEmail);
    const account = await browser.go(new URL('/account', nyckel.url).toString());
    expect(account.status).toBe(200);
    expect(account.url).toBe(new URL('/account', nyckel.url).toString());
    const confirm = await browser.submit(account, '/account/logout', {});
    const done = await browser.submit(confirm, /\/session\/end\/confirm$/, { logout: 'yes' });
    expect(new URL(done.url).pathname).toBe('/account/signed-out');
    expect(receiver.tokens()).toHaveLength(1);
    const payload = decodeJwt(receiver.tokens()[0].token);
    expect(payload.aud).toBe('spa');
    expect(payload.sid).toBe(decodeJwt(spaTokens.id_token!).sid);
  });
});

describe('a failing back-channel endpoint', () => {
  test('does not stop the sign-out; Nyckel logs a warning naming the client', async () => {
    receiver.received.length = 0;
    receiver.state.answerStatus = 500;
    try {
      const { browser, web, webTokens } = await signInToBoth();
      const logout = oidc.buildEndSessionUrl(web, { id_token_hint: webTokens.id_token!, post_logout_redirect_uri: 'http://localhost:4000/bye' });
      const confirm = await browser.go(logout.toString());
      const done = await browser.submit(confirm, /\/session\/end\/confirm$/, { logout: 'yes' });
      expect(done.url).toBe('http://localhost:4000/bye');
      expect(receiver.tokens()).toHaveLength(1);
      const warning = logs.entries().find((entry) => entry.msg === 'back-channel logout failed');
      expect(warning?.clientId).toBe('spa');
    } finally {
      receiver.state.answerStatus = 200;
    }
  });
});

describe('clients file', () => {
  test('a back-channel logout URI must be https, or http on localhost', () => {
    const yaml = withBackchannelLogout(testClientsYaml, 'http://rp.example.test/logout');
    expect(() => parseClientsFile(yaml, 'clients.yaml')).toThrow(/backchannel_logout_uri.*must use https/s);
  });
});
