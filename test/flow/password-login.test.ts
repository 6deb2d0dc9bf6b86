import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import { FormBrowser, textOf } from '../support/browser.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, signInWithPassword, startAuthorization } from '../support/relying-party.ts';

let nyckel: TestNyckel;
let spa: oidc.Configuration;
const callbackStop = (url: URL) => url.port === '4000';
const PER_ACCOUNT = 3;

beforeAll(async () => {
  nyckel = await startTestNyckel({
    env: { NYCKEL_LOGIN_FAILURES_PER_ACCOUNT: String(PER_ACCOUNT), NYCKEL_LOGIN_FAILURES_PER_IP: '30', NYCKEL_TRUST_PROXY: 'true' },
  });
  spa = await relyingParty(nyckel.url, 'spa');
});
afterAll(() => nyckel?.stop());

/** A fresh login page in a fresh browser; `ip` sets X-Forwarded-For (the test server trusts the proxy). */
async function attempt(credentials: { email: string; password: string }, ip = '198.51.100.1') {
  const browser = new FormBrowser(callbackStop);
  const start = await startAuthorization(spa, { redirect_uri: 'http://localhost:4000/spa-cb' });
  const page = await browser.go(start.url.toString());
  return browser.submit(page, '/login', credentials, { headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': ip } });
}

async function failuresRecorded(emailAddress: string) {
  const events = await nyckel.db.prisma.auditEvent.findMany({ where: { type: 'login.failed' } });
  return events.filter((e) => (e.data as { name?: string }).name === emailAddress).length;
}

describe('password sign-in', () => {
  test('wrong password and unknown account get the same answer', async () => {
    await nyckel.accounts.create({ email: 'same.answer@example.test', password: TEST_PASSWORD });
    const wrong = await attempt({ email: 'same.answer@example.test', password: 'not the password' }, '198.51.100.10');
    const unknown = await attempt({ email: 'nobody@example.test', password: 'not the password' }, '198.51.100.11');
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    const strip = (html: string) => textOf(html).replace(/(same\.answer|nobody)@example\.test/g, 'EMAIL');
    expect(strip(unknown.html)).toBe(strip(wrong.html));
    expect(textOf(wrong.html)).toContain('The user name, email address or the password is not right');
    // The typed address is kept; the password is not echoed back.
    expect(wrong.html).toContain('value="same.answer@example.test"');
    expect(wrong.html).not.toContain('not the password');
  });

  test('an unknown account costs a password hash too (no timing oracle)', async () => {
    await nyckel.accounts.create({ email: 'timing@example.test', password: TEST_PASSWORD });
    const time = async (email: string) => {
      const started = process.hrtime.bigint();
      await nyckel.accounts.verifyPassword(email, 'wrong password here');
      return Number(process.hrtime.bigint() - started) / 1e6;
    };
    await time('warm-up@example.test');
    const known: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 9; i++) {
      known.push(await time('timing@example.test'));
      unknown.push(await time(`nobody${i}@example.test`));
    }
    // The fastest of each: what the work costs, without the pauses a loaded machine adds to some tries.
    // Without the dummy hash an unknown account answers in well under a tenth of the time.
    expect(Math.min(...unknown) / Math.min(...known)).toBeGreaterThan(0.5);
  });

  test('failures are throttled per account, also for accounts that do not exist, across IPs', async () => {
    for (const account of ['throttled@example.test', 'ghost@example.test']) {
      if (account.startsWith('throttled')) await nyckel.accounts.create({ email: account, password: TEST_PASSWORD });
      for (let i = 0; i < PER_ACCOUNT; i++) {
        expect((await attempt({ email: account, password: `wrong-${i}-password` }, `203.0.113.${i}`)).status).toBe(401);
      }
      const blocked = await attempt({ email: account.toUpperCase(), password: TEST_PASSWORD }, '203.0.113.99');
      expect(blocked.status).toBe(429);
      expect(blocked.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(textOf(blocked.html)).toMatch(/Too many attempts\. Wait \d+ min\b/);
    }
    // Another account from the same addresses is not affected.
    await nyckel.accounts.create({ email: 'bystander@example.test', password: TEST_PASSWORD });
    expect((await attempt({ email: 'bystander@example.test', password: TEST_PASSWORD }, '203.0.113.1')).status).toBe(303);
  });

  test('parallel guesses are all counted: no more than the budget reach the password check', async () => {
    const email = 'parallel@example.test';
    await nyckel.accounts.create({ email, password: TEST_PASSWORD });
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => attempt({ email, password: `guess-number-${i}` }, `192.0.2.${i}`)));
    expect(results.filter((r) => r.status === 401).length).toBeLessThanOrEqual(PER_ACCOUNT);
    expect(results.filter((r) => r.status === 429).length).toBeGreaterThanOrEqual(12 - PER_ACCOUNT);
    expect(await failuresRecorded(email)).toBeLessThanOrEqual(PER_ACCOUNT);
  });

  test('failures are throttled per IP address', async () => {
    const ip = '198.51.100.200';
    let status = 0;
    for (let i = 0; i < 31 && status !== 429; i++) {
      status = (await attempt({ email: `spray${i}@example.test`, password: 'sprayed-password' }, ip)).status;
    }
    expect(status).toBe(429);
  });

  test('a successful sign-in clears the account counter', async () => {
    const email = 'recovers@example.test';
    await nyckel.accounts.create({ email, password: TEST_PASSWORD });
    for (let i = 0; i < PER_ACCOUNT - 1; i++) await attempt({ email, password: 'wrong password!' }, '198.51.100.50');
    expect((await attempt({ email, password: TEST_PASSWORD }, '198.51.100.50')).status).toBe(303);
    for (let i = 0; i < PER_ACCOUNT - 1; i++) {
      expect((await attempt({ email, password: 'wrong password!' }, '198.51.100.50')).status).toBe(401);
    }
  });

  test('a disabled account cannot sign in, and its tokens stop working', async () => {
    const email = 'leaver@example.test';
    await nyckel.accounts.create({ email, password: TEST_PASSWORD });
    const browser = new FormBrowser(callbackStop);
    const start = await startAuthorization(spa, { redirect_uri: 'http://localhost:4000/spa-cb', scope: 'openid offline_access', prompt: 'consent' });
    const { callback } = await signInWithPassword(browser, start, { email, password: TEST_PASSWORD });
    const tokens = await oidc.authorizationCodeGrant(spa, callback, {
      pkceCodeVerifier: start.verifier,
      expectedState: start.state,
      expectedNonce: start.nonce,
    });

    await nyckel.accounts.setStatus(await nyckel.accounts.requireByLogin(email), 'disabled', { actor: 'test' });
    const refused = await attempt({ email, password: TEST_PASSWORD }, '198.51.100.60');
    expect(refused.status).toBe(401);
    await expect(oidc.fetchUserInfo(spa, tokens.access_token, tokens.claims()!.sub)).rejects.toBeTruthy();
    await expect(oidc.refreshTokenGrant(spa, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    const events = await nyckel.db.prisma.auditEvent.findMany({ where: { type: 'user.disabled' } });
    expect(events).toHaveLength(1);
  });

  test('cookies are HttpOnly and SameSite, and Secure behind a TLS-terminating proxy', async () => {
    const start = await startAuthorization(spa, { redirect_uri: 'http://localhost:4000/spa-cb' });
    const viaTls = await fetch(start.url, { redirect: 'manual', headers: { 'x-forwarded-proto': 'https' } });
    const interactionUrl = new URL(viaTls.headers.get('location')!, nyckel.url);
    const cookies = viaTls.headers.getSetCookie();
    const page = await fetch(interactionUrl, {
      headers: { 'x-forwarded-proto': 'https', cookie: cookies.map((c) => c.split(';')[0]).join('; ') },
    });
    expect(page.status).toBe(200);
    const all = [...cookies, ...page.headers.getSetCookie()].filter((c) => !/=;|expires=Thu, 01 Jan 1970/i.test(c));
    expect(all.map((c) => c.split('=')[0])).toEqual(expect.arrayContaining(['nyckel.interaction', 'nyckel.csrf']));
    for (const cookie of all) {
      expect(cookie).toMatch(/;\s*httponly/i);
      expect(cookie).toMatch(/;\s*samesite=lax/i);
      expect(cookie).toMatch(/;\s*secure/i);
    }
    const plain = await fetch(start.url, { redirect: 'manual' });
    expect(plain.headers.getSetCookie().some((c) => /;\s*secure/i.test(c))).toBe(false);
  });

  test('an empty form is answered with a message, not an error', async () => {
    const page = await attempt({ email: '', password: '' });
    expect(page.status).toBe(400);
    expect(textOf(page.html)).toContain('Enter your user name or email address, and your password');
  });
});
