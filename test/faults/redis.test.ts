import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import { FormBrowser, textOf } from '../support/browser.ts';
import { messages } from '../support/messages.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { freshRedisPrefix, redisTestUrl } from '../support/redis.ts';
import { relyingParty, signInWithPassword, startAuthorization } from '../support/relying-party.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';

/**
 * A node configured with Redis while Redis is down: every request that needs it answers a clean 503
 * (a localised page, an OAuth error, a JSON error), nothing signs anyone in, and once Redis is back
 * the same node carries on, the sign-in in progress included.
 */
let proxy: TcpProxy;
let nyckel: TestNyckel;
const redis = freshRedisPrefix();
const en = messages('en');

beforeAll(async () => {
  const url = new URL(redisTestUrl);
  proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 6379) });
  nyckel = await startTestNyckel({ env: { REDIS_URL: `redis://${proxy.address}`, NYCKEL_REDIS_PREFIX: redis.prefix } });
});
afterAll(async () => {
  await nyckel?.stop();
  await proxy?.close();
  await redis.drop();
});

async function untilReady() {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if ((await fetch(`${nyckel.url}/readyz`)).ok) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('the node did not become ready again');
}

describe('Redis down', () => {
  test('503s everywhere it is needed, no sign-in slips through, and the sign-in in progress finishes once Redis is back', async () => {
    const email = 'redis-down@scb.example';
    await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
    const config = await relyingParty(nyckel.url, 'web', 'web-secret-web-secret-0001');
    // An earlier sign-in's opaque access token (kept in Redis), and a sign-in waiting for the password.
    const earlier = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/cb', scope: 'openid email' });
    const { callback: earlierCallback } = await signInWithPassword(new FormBrowser((url) => url.port === '4000'), earlier, { email, password: TEST_PASSWORD });
    const earlierTokens = await oidc.authorizationCodeGrant(config, earlierCallback, {
      pkceCodeVerifier: earlier.verifier,
      expectedState: earlier.state,
      expectedNonce: earlier.nonce,
    });
    const userinfo = () => fetch(`${nyckel.url}/me`, { headers: { authorization: `Bearer ${earlierTokens.access_token}` } });
    expect((await userinfo()).status).toBe(200);

    // prompt=consent: the consent page again, although this user allowed the app before.
    const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/cb', scope: 'openid email', prompt: 'consent' });
    const browser = new FormBrowser((url) => url.port === '4000');
    const loginPage = await browser.go(start.url.toString());
    expect(loginPage.html).toContain('/login');

    proxy.cut();

    // The password form of the sign-in in progress: a page in the user's language, no redirect.
    const refused = await browser.submit(loginPage, '/login', { email, password: TEST_PASSWORD });
    expect(refused.status).toBe(503);
    expect(textOf(refused.html)).toContain(en('errors.temporarily_unavailable'));
    expect(refused.html).not.toMatch(/at \S+\.ts:\d+/);

    // A new authorization request and the userinfo endpoint: OAuth errors, never server_error.
    const authorize = await browser.request(start.url.toString());
    expect(authorize.status).toBe(503);
    const refusedUserinfo = await userinfo();
    expect(refusedUserinfo.status).toBe(503);
    expect(refusedUserinfo.headers.get('www-authenticate') ?? (await refusedUserinfo.text())).toContain('temporarily_unavailable');

    const ready = await fetch(`${nyckel.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'unavailable', database: 'ok', redis: 'unreachable' });
    expect((await fetch(`${nyckel.url}/healthz`)).status).toBe(200);

    proxy.restore();
    await untilReady();

    // The same form again, on the same node, without a restart: the sign-in completes.
    const consent = await browser.submit(loginPage, '/login', { email, password: TEST_PASSWORD });
    // A third-party client, asked again (prompt=consent).
    expect(consent.html).toContain('/consent"');
    const callback = await browser.submit(consent, '/consent', { decision: 'allow' });
    expect(callback.url).toContain('code=');
    const tokens = await oidc.authorizationCodeGrant(config, new URL(callback.url), {
      pkceCodeVerifier: start.verifier,
      expectedState: start.state,
      expectedNonce: start.nonce,
    });
    expect(tokens.claims()).toMatchObject({ acr: 'urn:nyckel:acr:password' });
    expect((await userinfo()).status).toBe(200);
  });
});
