import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import { FormBrowser, type Page } from '../support/browser.ts';
import { codeIn, latestMail } from '../support/mail.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, startAuthorization } from '../support/relying-party.ts';

const TOKEN = 'metrics-scrape-token-0123456789';
const callbackStop = (url: URL) => url.port === '4000';

let nyckel: TestNyckel;
let counter = 0;
/** Every address and user id the suite made: none may appear in the metrics. */
const personal: string[] = [];
/** Interaction uids seen in the flows: no path or id may leak into a label. */
const uids: string[] = [];

beforeAll(async () => {
  nyckel = await startTestNyckel({
    env: {
      NYCKEL_METRICS_TOKEN: TOKEN,
      NYCKEL_LOGIN_FAILURES_PER_ACCOUNT: '2',
      NYCKEL_FACTOR_MAX_FAILURES: '2',
      NYCKEL_CODE_RESEND_COOLDOWN: '0',
      NYCKEL_SMS_BUDGET_PER_NUMBER: '1',
    },
  });
});
afterAll(() => nyckel?.stop());

async function scrape(): Promise<string> {
  const response = await fetch(`${nyckel.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
  expect(response.status).toBe(200);
  return response.text();
}

/** The value of one sample of the text format (0 when the series does not exist yet). */
function sample(text: string, name: string, labels: Record<string, string>): number {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const given = Object.fromEntries([...(match[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    const wanted = Object.entries(labels);
    if (Object.keys(given).length === wanted.length && wanted.every(([key, value]) => given[key] === value)) return Number(match[3]);
  }
  return 0;
}

/** Runs `work` and returns how much each named sample rose meanwhile. */
async function rise<K extends string>(series: Record<K, [string, Record<string, string>]>, work: () => Promise<unknown>): Promise<Record<K, number>> {
  const before = await scrape();
  await work();
  const after = await scrape();
  const entries = Object.entries(series) as Array<[K, [string, Record<string, string>]]>;
  return Object.fromEntries(entries.map(([key, [name, labels]]) => [key, sample(after, name, labels) - sample(before, name, labels)])) as Record<K, number>;
}

async function newUser(phone?: string) {
  const email = `metrics${++counter}@scb.example`;
  const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
  if (phone) await nyckel.db.prisma.userPhone.create({ data: { userId: user.id, e164: phone, verifiedAt: new Date() } });
  personal.push(email, user.id, ...(phone ? [phone] : []));
  return email;
}

async function passwordStep(clientId: string, email: string, password = TEST_PASSWORD) {
  const config = await relyingParty(nyckel.url, clientId);
  const start = await startAuthorization(config, { redirect_uri: `http://localhost:4000/${clientId}-cb`, scope: 'openid email' });
  const browser = new FormBrowser(callbackStop);
  let page = await browser.go(start.url.toString());
  uids.push(/\/interaction\/([^/]+)/.exec(page.url)![1]);
  page = await browser.submit(page, '/login', { email, password });
  return { config, start, browser, page };
}

/** Password, then the email code (the primary) sent at once; returns the code page and the flow. */
async function emailCodeStep(email: string) {
  const flow = await passwordStep('selfservice', email);
  expect(new URL(flow.page.url).pathname).toMatch(/\/mfa\/email-code\/challenge\/[0-9a-f-]{36}$/);
  return flow;
}

const logins = (outcome: string, factor: string): [string, Record<string, string>] => ['nyckel_logins_total', { outcome, factor }];
const tokens = (kind: string): [string, Record<string, string>] => ['nyckel_tokens_issued_total', { kind }];
const refusals = (limiter: string): [string, Record<string, string>] => ['nyckel_rate_limit_refusals_total', { limiter }];

describe('GET /metrics', () => {
  test('Prometheus text format with the process metrics and every Nyckel metric described', async () => {
    const response = await fetch(`${nyckel.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4; charset=utf-8$/);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const text = await response.text();
    expect(sample(text, 'process_resident_memory_bytes', {})).toBeGreaterThan(0);
    expect(text).toMatch(/^# TYPE process_cpu_user_seconds_total counter$/m);
    expect(text).toMatch(/^# TYPE nodejs_eventloop_lag_seconds gauge$/m);
    for (const [name, type] of [
      ['nyckel_logins_total', 'counter'],
      ['nyckel_factor_verify_seconds', 'histogram'],
      ['nyckel_deliveries_total', 'counter'],
      ['nyckel_rate_limit_refusals_total', 'counter'],
      ['nyckel_tokens_issued_total', 'counter'],
      ['nyckel_http_requests_total', 'counter'],
    ]) {
      expect(text).toMatch(new RegExp(`^# TYPE ${name} ${type}$`, 'm'));
    }
  });

  test('without the bearer token, or with a wrong one, 401; the right one is answered', async () => {
    const none = await fetch(`${nyckel.url}/metrics`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await none.text()).not.toContain('nyckel_');
    for (const header of [`Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, `Basic ${TOKEN}`, TOKEN, 'Bearer ']) {
      const wrong = await fetch(`${nyckel.url}/metrics`, { headers: { authorization: header, accept: 'application/json' } });
      expect(wrong.status).toBe(401);
      expect(await wrong.json()).toMatchObject({ error: 'login_required' });
    }
    const right = await fetch(`${nyckel.url}/metrics`, { headers: { authorization: `bearer ${TOKEN}` } });
    expect(right.status).toBe(200);
  });
});

describe('what is counted', () => {
  test('a sign-in with an email code: one success for email-code, its check timed, its mail sent, its tokens issued', async () => {
    const email = await newUser();
    let flow: Awaited<ReturnType<typeof emailCodeStep>> | undefined;
    let done: Page | undefined;
    const rose = await rise(
      {
        success: logins('success', 'email-code'),
        passwordOnly: logins('success', 'none'),
        verified: ['nyckel_factor_verify_seconds_count', { factor: 'email-code', outcome: 'verified' }],
        mail: ['nyckel_deliveries_total', { channel: 'mail', transport: 'outbox', outcome: 'sent' }],
        codes: tokens('authorization_code'),
        access: tokens('access_token'),
        idTokens: tokens('id_token'),
        interaction: ['nyckel_http_requests_total', { method: 'POST', route_class: 'interaction', status: '303' }],
      },
      async () => {
        flow = await emailCodeStep(email);
        await nyckel.mail.dispatcher.deliverDue();
        done = await flow.browser.submit(flow.page, '/verify', { code: codeIn((await latestMail(nyckel.db.prisma, email)).text) });
        expect(done.url).toContain('code=');
        const result = await oidc.authorizationCodeGrant(flow.config, new URL(done.url), {
          pkceCodeVerifier: flow.start.verifier,
          expectedState: flow.start.state,
          expectedNonce: flow.start.nonce,
        });
        expect(result.claims()).toMatchObject({ acr: 'urn:nyckel:acr:mfa' });
      },
    );
    expect(rose).toEqual({ success: 1, passwordOnly: 0, verified: 1, mail: 1, codes: 1, access: 1, idTokens: 1, interaction: expect.any(Number) });
    expect(rose.interaction).toBeGreaterThanOrEqual(2);
  });

  test('a sign-in with the password only counts as factor "none"', async () => {
    const email = await newUser();
    const rose = await rise({ none: logins('success', 'none') }, async () => {
      const { page } = await passwordStep('spa', email);
      expect(page.url).toContain('code=');
    });
    expect(rose).toEqual({ none: 1 });
  });

  test('wrong passwords, then the throttle: wrong_password, then rate_limited and a login_throttle refusal', async () => {
    const email = await newUser();
    const rose = await rise(
      {
        wrong: logins('wrong_password', 'password'),
        limited: logins('rate_limited', 'password'),
        throttle: refusals('login_throttle'),
        success: logins('success', 'none'),
      },
      async () => {
        for (let i = 0; i < 2; i++) expect((await passwordStep('spa', email, 'not the password')).page.status).toBe(401);
        expect((await passwordStep('spa', email, 'not the password')).page.status).toBe(429);
      },
    );
    expect(rose).toEqual({ wrong: 2, limited: 1, throttle: 1, success: 0 });
  });

  test('wrong codes, then the failure lock: factor_failed, then locked and a factor_lock refusal', async () => {
    const email = await newUser();
    const rose = await rise(
      {
        failed: logins('factor_failed', 'email-code'),
        locked: logins('locked', 'email-code'),
        lock: refusals('factor_lock'),
        timedFailed: ['nyckel_factor_verify_seconds_count', { factor: 'email-code', outcome: 'failed' }],
      },
      async () => {
        const { browser, page } = await emailCodeStep(email);
        const right = codeIn((await latestMail(nyckel.db.prisma, email)).text);
        const wrong = right === '000000' ? '111111' : '000000';
        expect((await browser.submit(page, '/verify', { code: wrong })).status).toBe(401);
        expect((await browser.submit(page, '/verify', { code: wrong })).status).toBe(429);
        expect((await browser.submit(page, '/verify', { code: right })).status).toBe(429);
      },
    );
    expect(rose).toEqual({ failed: 1, locked: 2, lock: 2, timedFailed: 3 });
  });

  test('an SMS code sent through the outbox, then the number budget refuses the next one', async () => {
    const phone = '+46701230042';
    const email = await newUser(phone);
    const rose = await rise(
      { sent: ['nyckel_deliveries_total', { channel: 'sms', transport: 'outbox', outcome: 'sent' }], budget: refusals('sms_budget') },
      async () => {
        // The code to the one number (SMS is the primary) is sent at once after the password.
        const { browser, page } = await passwordStep('care', email);
        expect(page.status).toBe(200);
        expect(new URL(page.url).pathname).toMatch(/\/mfa\/sms\/challenge\/[0-9a-f-]{36}$/);
        // The start page, opened by its address (nothing sent), asks for another: the budget refuses it.
        const start = await browser.go(page.url.replace(/\/challenge\/[^/]+$/, ''));
        const target = /name="target"[^>]*value="([0-9a-f-]{36})"/.exec(start.html)![1];
        expect((await browser.submit(start, '/start', { target })).status).toBe(429);
      },
    );
    expect(rose).toEqual({ sent: 1, budget: 1 });
  });

  test('a client_credentials token counts as kind client_credentials', async () => {
    const machine = await relyingParty(nyckel.url, 'machine', 'machine-secret-machine-01');
    const rose = await rise({ credentials: tokens('client_credentials'), access: tokens('access_token') }, async () => {
      await oidc.clientCredentialsGrant(machine, { scope: 'reports:read', resource: 'https://api.example.test/reports' });
    });
    expect(rose).toEqual({ credentials: 1, access: 0 });
  });

  test('no label carries an address, a user id, a phone number or an interaction uid', async () => {
    expect(personal.length).toBeGreaterThan(0);
    expect(uids.length).toBeGreaterThan(0);
    const text = await scrape();
    for (const value of [...personal, ...uids]) expect(text).not.toContain(value);
    expect(text).not.toMatch(/[^\s"@]+@[^\s"@]+\.[a-z]{2,}/i);
    expect(text).not.toMatch(/route_class="\//);
  });
});

describe('NYCKEL_METRICS=false', () => {
  let off: TestNyckel;
  beforeAll(async () => {
    off = await startTestNyckel({ env: { NYCKEL_METRICS: 'false' } });
  });
  afterAll(() => off?.stop());

  test('/metrics is not found', async () => {
    const response = await fetch(`${off.url}/metrics`);
    expect(response.status).toBe(404);
    expect(await response.text()).not.toContain('nyckel_');
    // The counting goes on (for tests and embedders); only the endpoint is off.
    expect(off.metrics.registry.getSingleMetric('nyckel_logins_total')).toBeDefined();
  });
});
