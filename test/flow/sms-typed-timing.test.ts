import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { FormBrowser, textOf, type Page } from '../support/browser.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, startAuthorization } from '../support/relying-party.ts';
import { startFakeTwilio, TWILIO_SID, TWILIO_TOKEN } from '../support/twilio.ts';

/**
 * Issue 13, section 6: with a real provider, a typed number that is registered must not be answered
 * later than one that is not (the provider call would show which numbers an account has). Twilio is
 * the loopback fake through the real SDK, made slow.
 */

const PROVIDER_DELAY_MS = 3000;
const callbackStop = (url: URL) => url.port === '4000';
let counter = 0;
const newNumber = () => `+467013${String(++counter * 7 + 10000).slice(-5)}`;
const newIp = () => `10.14.0.${++counter % 250}`;

let nyckel: TestNyckel;
let fake: Awaited<ReturnType<typeof startFakeTwilio>>;

beforeAll(async () => {
  fake = await startFakeTwilio();
  nyckel = await startTestNyckel({
    env: {
      NYCKEL_SMS_TRANSPORT: 'twilio',
      TWILIO_ACCOUNT_SID: TWILIO_SID,
      TWILIO_AUTH_TOKEN: TWILIO_TOKEN,
      TWILIO_FROM: '+46700000001',
      NYCKEL_TRUST_PROXY: 'true',
    },
    twilioHttpClient: fake.httpClient(),
  });
});
afterAll(async () => {
  await nyckel?.stop();
  await fake?.close();
});

async function newUser(e164: string) {
  const email = `typed${++counter}@care.example`;
  const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
  await nyckel.db.prisma.userPhone.create({ data: { userId: user.id, e164, verifiedAt: new Date() } });
  return { email, user };
}

async function smsPage(email: string) {
  const ip = newIp();
  const config = await relyingParty(nyckel.url, 'care');
  const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/care-cb', scope: 'openid email' });
  // Stopped before the code SMS (the primary) sends at once to the one number: these tests time and
  // count the start page's own sends, so the start page is opened by its address.
  const browser = new FormBrowser((url) => callbackStop(url) || url.searchParams.get('send') === '1');
  const post = (from: Page, action: string, fields: Record<string, string>) =>
    browser.submit(from, action, fields, { headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': ip } });
  const login = await post(await browser.go(start.url.toString()), '/login', { email, password: TEST_PASSWORD });
  expect(login.url).toMatch(/\/mfa\/sms\?send=1$/);
  const page = await browser.go(new URL(new URL(login.url).pathname, nyckel.url).toString());
  expect(page.html).toContain('name="typed"');
  return { browser, page, post };
}

async function timed(run: () => Promise<Page>): Promise<{ page: Page; ms: number }> {
  const started = performance.now();
  const page = await run();
  return { page, ms: performance.now() - started };
}

const messagesTo = (e164: string) => fake.requests.filter((r) => r.path.endsWith('/Messages.json') && r.form.To === e164);

async function eventually<T>(read: () => Promise<T> | T, done: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('a typed number is answered in the same time, registered or not', () => {
  test('Twilio slow: the answers for a registered and an unregistered typed number do not differ by the provider delay; the text still goes out', async () => {
    fake.slow(PROVIDER_DELAY_MS);
    try {
      await compareTimes();
    } finally {
      fake.slow(0);
    }
  });

  async function compareTimes() {
    const times: Record<'registered' | 'unregistered', number[]> = { registered: [], unregistered: [] };
    const sentTo: string[] = [];
    for (let round = 0; round < 2; round++) {
      for (const kind of ['registered', 'unregistered'] as const) {
        const e164 = newNumber();
        const { email } = await newUser(e164);
        const { page, post } = await smsPage(email);
        const typed = kind === 'registered' ? e164 : newNumber();
        const answer = await timed(() => post(page, '/start', { typed }));
        expect(answer.page.status).toBe(200);
        expect(textOf(answer.page.html)).toContain('We have sent a text message to your registered mobile number');
        times[kind].push(answer.ms);
        if (kind === 'registered') sentTo.push(e164);
      }
    }
    const slowest = (list: number[]) => Math.max(...list);
    // Neither waited for Twilio, so they differ by far less than its delay.
    expect(slowest(times.registered)).toBeLessThan(PROVIDER_DELAY_MS);
    expect(Math.abs(slowest(times.registered) - slowest(times.unregistered))).toBeLessThan(PROVIDER_DELAY_MS / 2);
    // The registered numbers got their text after the answer; the unregistered ones nothing.
    for (const e164 of sentTo)
      expect(
        await eventually(
          () => messagesTo(e164).length,
          (n) => n === 1,
        ),
      ).toBe(1);
  }

  test('the code sent after the answer signs in', async () => {
    const e164 = newNumber();
    const { email } = await newUser(e164);
    const { page, post } = await smsPage(email);
    const codePage = await post(page, '/start', { typed: e164 });
    const [message] = await eventually(
      () => messagesTo(e164),
      (list) => list.length === 1,
    );
    const code = /#(\d{6})$/.exec(message.form.Body)![1];
    const done = await post(codePage, '/verify', { code });
    expect(done.url).toContain('code=');
  });

  test('Twilio refuses the text sent after the answer: the code page says so, and it is audited', async () => {
    const e164 = newNumber();
    const { email, user } = await newUser(e164);
    const { browser, page, post } = await smsPage(email);
    fake.failNext.push(500);
    const codePage = await post(page, '/start', { typed: e164 });
    expect(codePage.status).toBe(200);
    const shown = await eventually(
      () => browser.go(codePage.url),
      (again) => textOf(again.html).includes('We could not send the text message'),
    );
    expect(textOf(shown.html)).toContain('We could not send the text message. Try again, or use another method.');
    const audit = await nyckel.db.prisma.auditEvent.findFirst({ where: { userId: user.id, type: 'sms.failed' } });
    expect(JSON.stringify(audit?.data)).toContain('HTTP 500');
  });

  test('a number chosen from the list is still sent at once: a failure is said on the start page', async () => {
    const e164 = newNumber();
    const { email, user } = await newUser(e164);
    const { page, post } = await smsPage(email);
    fake.failNext.push(500);
    const target = /name="target"[^>]*value="([0-9a-f-]{36})"/.exec(page.html)![1];
    const failed = await post(page, '/start', { target });
    expect(failed.status).toBe(400);
    expect(textOf(failed.html)).toContain('We could not send the text message.');
    expect(await nyckel.db.prisma.factorChallenge.count({ where: { userId: user.id } })).toBe(0);
    // The failed send held no cooldown: trying again at once sends.
    const sent = await post(failed, '/start', { target });
    expect(sent.status).toBe(200);
    expect(messagesTo(e164).length).toBe(2);
  });

  test('eight parallel sends to one number send one text', async () => {
    const e164 = newNumber();
    const { email } = await newUser(e164);
    const { page, post } = await smsPage(email);
    const target = /name="target"[^>]*value="([0-9a-f-]{36})"/.exec(page.html)![1];
    const answers = await Promise.all(Array.from({ length: 8 }, () => post(page, '/start', { target })));
    expect(answers.map((a) => a.status)).toEqual(Array(8).fill(200));
    expect(messagesTo(e164)).toHaveLength(1);
  });
});
