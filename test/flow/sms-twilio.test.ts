import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { textOf } from '../support/browser.ts';
import { startTestNyckel, type TestNyckel } from '../support/nyckel.ts';
import { startFakeTwilio, TWILIO_SID, TWILIO_TOKEN, TWILIO_VERIFY_SID } from '../support/twilio.ts';

import { newNumber, newUser, smsPage, smsSent, onCodePage, smsCode, firstTarget, tokensFrom, smsTo, refusals } from '../support/sms-flow.ts';
describe('SMS through the real Twilio SDK against a fake Twilio', () => {
  let nyckel: TestNyckel;
  let fake: Awaited<ReturnType<typeof startFakeTwilio>>;
  const FROM = '+46700000001';
  beforeAll(async () => {
    fake = await startFakeTwilio();
    nyckel = await startTestNyckel({
      env: {
        NYCKEL_SMS_TRANSPORT: 'twilio',
        TWILIO_ACCOUNT_SID: TWILIO_SID,
        TWILIO_AUTH_TOKEN: TWILIO_TOKEN,
        TWILIO_FROM: FROM,
        NYCKEL_CODE_RESEND_COOLDOWN: '0',
        NYCKEL_TRUST_PROXY: 'true',
      },
      twilioHttpClient: fake.httpClient(),
    });
  });
  afterAll(async () => {
    await nyckel?.stop();
    await fake?.close();
  });
  const messagesTo = (e164: string) => fake.requests.filter((r) => r.path.endsWith('/Messages.json') && r.form.To === e164);

  test('Programmable Messaging: To, From, Body and Basic auth with the account SID; acr mfa, amr pwd+sms', async () => {
    const e164 = newNumber();
    const { email } = await newUser(nyckel, [{ e164 }]);
    const { config, start, page: codePage, post } = await smsSent(nyckel, email);
    let page = codePage;
    expect(page.status).toBe(200);
    onCodePage(page);
    expect(messagesTo(e164)).toHaveLength(1);
    const [request] = messagesTo(e164);
    expect(request.method).toBe('POST');
    expect(request.path).toBe(`/2010-04-01/Accounts/${TWILIO_SID}/Messages.json`);
    expect(request.authorization).toBe(`Basic ${Buffer.from(`${TWILIO_SID}:${TWILIO_TOKEN}`).toString('base64')}`);
    expect(request.form.From).toBe(FROM);
    const code = smsCode(request.form.Body);
    expect(request.form.Body).toBe(`Your code for Care portal is ${code}. Valid for 5 minutes.\n\n@localhost #${code}`);
    // Nothing in the outbox: the text went to Twilio.
    expect(await smsTo(nyckel, e164)).toHaveLength(0);
    page = await post(page, '/verify', { code });
    const tokens = await tokensFrom(config, start, page);
    expect(tokens.claims()).toMatchObject({ acr: 'urn:nyckel:acr:mfa', amr: ['pwd', 'sms', 'mfa'] });
  });

  test('a country that is not allowed never reaches Twilio', async () => {
    const foreign = '+4915123456789';
    const { email, user } = await newUser(nyckel, [{ e164: foreign }]);
    const { page: startPage, post } = await smsPage(nyckel, email);
    const before = fake.requests.length;
    const page = await post(startPage, '/start', { target: firstTarget(startPage) });
    expect(page.status).toBe(400);
    expect(textOf(page.html)).toContain('We cannot send text messages to numbers in that country.');
    expect(fake.requests.length).toBe(before);
    expect(await refusals(nyckel, user.id)).toEqual(['country']);
  });

  test('Twilio answers 500: a clear message, nothing half-written; a failed resend leaves the earlier code usable', async () => {
    const e164 = newNumber();
    const { email, user } = await newUser(nyckel, [{ e164 }]);
    // The code sent at once after the password fails: the start page says so and offers to send again.
    fake.failNext.push(500);
    const { config, start, page: failed, post } = await smsSent(nyckel, email);
    expect(failed.status).toBe(400);
    expect(new URL(failed.url).pathname).toMatch(/\/mfa\/sms$/);
    expect(textOf(failed.html)).toContain('We could not send the text message. Try again, or use another method.');
    expect(await nyckel.db.prisma.factorChallenge.count({ where: { userId: user.id } })).toBe(0);
    const audit = await nyckel.db.prisma.auditEvent.findFirst({ where: { userId: user.id, type: 'sms.failed' } });
    expect(JSON.stringify(audit!.data)).toContain('HTTP 500');
    expect(JSON.stringify(audit!.data)).not.toContain(TWILIO_TOKEN);

    let page = await post(failed, '/start', { target: firstTarget(failed) });
    onCodePage(page);
    expect(messagesTo(e164)).toHaveLength(2);
    const code = smsCode(messagesTo(e164).at(-1)!.form.Body);
    fake.failNext.push(503);
    const resendFailed = await post(page, '/resend', {});
    expect(textOf(resendFailed.html)).toContain('We could not send the text message.');
    expect(await nyckel.db.prisma.factorChallenge.count({ where: { userId: user.id } })).toBe(1);
    page = await post(resendFailed, '/verify', { code });
    const tokens = await tokensFrom(config, start, page);
    expect(tokens.claims()).toMatchObject({ amr: ['pwd', 'sms', 'mfa'] });
  });
});

describe('SMS through Twilio Verify (a fake of /v2/Services/<sid>/Verifications)', () => {
  let nyckel: TestNyckel;
  let fake: Awaited<ReturnType<typeof startFakeTwilio>>;
  beforeAll(async () => {
    fake = await startFakeTwilio();
    nyckel = await startTestNyckel({
      env: {
        NYCKEL_SMS_TRANSPORT: 'twilio-verify',
        TWILIO_ACCOUNT_SID: TWILIO_SID,
        TWILIO_AUTH_TOKEN: TWILIO_TOKEN,
        TWILIO_VERIFY_SERVICE_SID: TWILIO_VERIFY_SID,
        NYCKEL_TRUST_PROXY: 'true',
      },
      twilioHttpClient: fake.httpClient(),
    });
  });
  afterAll(async () => {
    await nyckel?.stop();
    await fake?.close();
  });
  const checks = () => fake.requests.filter((r) => r.path.endsWith('/VerificationCheck'));

  test('Twilio makes and checks the code; a wrong one counts; acr mfa, amr pwd+sms', async () => {
    const e164 = newNumber();
    const { email, user } = await newUser(nyckel, [{ e164 }]);
    const { config, start, page: codePage, post } = await smsSent(nyckel, email);
    onCodePage(codePage);
    let page = codePage;
    const started = fake.requests.find((r) => r.path.endsWith('/Verifications') && r.form.To === e164)!;
    expect(started.path).toBe(`/v2/Services/${TWILIO_VERIFY_SID}/Verifications`);
    expect(started.form).toMatchObject({ To: e164, Channel: 'sms', Locale: 'en' });
    expect(started.authorization).toBe(`Basic ${Buffer.from(`${TWILIO_SID}:${TWILIO_TOKEN}`).toString('base64')}`);
    // No code of Nyckel's: nothing to compare a hash with.
    const challenge = await nyckel.db.prisma.factorChallenge.findFirst({ where: { userId: user.id } });
    expect(challenge!.secretHash).toBeNull();
    const code = fake.verifyCodes.get(e164)!;
    page = await post(page, '/verify', { code: code === '000000' ? '111111' : '000000' });
    expect(page.status).toBe(401);
    expect(textOf(page.html)).toContain('You have 4 more attempt(s)');
    expect(checks().at(-1)!.form).toMatchObject({ To: e164 });
    page = await post(page, '/verify', { code });
    expect(checks().at(-1)!.form).toMatchObject({ To: e164, Code: code });
    const tokens = await tokensFrom(config, start, page);
    expect(tokens.claims()).toMatchObject({ acr: 'urn:nyckel:acr:mfa', amr: ['pwd', 'sms', 'mfa'] });
  });

  test('locked after five wrong codes: Twilio is no longer asked', async () => {
    const e164 = newNumber();
    const { email } = await newUser(nyckel, [{ e164 }]);
    const { page: codePage, post } = await smsSent(nyckel, email);
    onCodePage(codePage);
    let page = codePage;
    const code = fake.verifyCodes.get(e164)!;
    const wrong = code === '000000' ? '111111' : '000000';
    for (let i = 0; i < 5; i++) page = await post(page, '/verify', { code: wrong });
    const asked = checks().length;
    page = await post(page, '/verify', { code });
    expect(page.status).toBe(429);
    expect(checks().length).toBe(asked);
  });

  test('Verify unavailable (5xx) when starting: a clear message and no challenge', async () => {
    const e164 = newNumber();
    const { email, user } = await newUser(nyckel, [{ e164 }]);
    // The code started at once after the password: Verify fails, the start page says so.
    fake.failNext.push(502);
    const { page } = await smsSent(nyckel, email);
    expect(page.status).toBe(400);
    expect(new URL(page.url).pathname).toMatch(/\/mfa\/sms$/);
    expect(textOf(page.html)).toContain('We could not send the text message.');
    expect(await nyckel.db.prisma.factorChallenge.count({ where: { userId: user.id } })).toBe(0);
  });
});

describe('the global hourly SMS budget', () => {
  let nyckel: TestNyckel;
  beforeAll(async () => {
    nyckel = await startTestNyckel({ env: { NYCKEL_TRUST_PROXY: 'true', NYCKEL_SMS_BUDGET_GLOBAL: '2' } });
  });
  afterAll(() => nyckel?.stop());

  test('once spent, nobody gets an SMS, and the refusal is audited', async () => {
    const numbers = [newNumber(), newNumber(), newNumber()];
    const users = await Promise.all(numbers.map((e164) => newUser(nyckel, [{ e164 }])));
    for (const i of [0, 1]) {
      const { page } = await smsSent(nyckel, users[i].email);
      expect(page.status).toBe(200);
      onCodePage(page);
    }
    // The third code, sent at once after the password, is refused: the start page says why.
    const { page: refused } = await smsSent(nyckel, users[2].email);
    expect(refused.status).toBe(429);
    expect(textOf(refused.html)).toContain('Too many text messages have been sent.');
    expect(await smsTo(nyckel, numbers[2])).toHaveLength(0);
    expect(await refusals(nyckel, users[2].user.id)).toEqual(['budget_global']);
  });
});
