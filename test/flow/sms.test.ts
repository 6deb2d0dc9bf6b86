import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { parseClientsFile } from '../../src/clients/clients-file.ts';
import { FormBrowser, textOf, type Page } from '../support/browser.ts';
import { startTestNyckel, TEST_PASSWORD, testClientsYaml, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, startAuthorization } from '../support/relying-party.ts';
import {
  callbackStop,
  newIp,
  newNumber,
  newUser,
  smsPage,
  smsSent,
  onCodePage,
  smsCode,
  firstTarget,
  tokensFrom,
  smsTo,
  refusals,
} from '../support/sms-flow.ts';
/** A client offering SMS next to an authenticator app, to see the NIST 800-63B hint. */
const clientsYaml = testClientsYaml.replace(
  'resources:',
  `  - client_id: carestrong
    name: Care portal
    first_party: true
    token_endpoint_auth_method: none
    redirect_uris: [http://localhost:4000/carestrong-cb]
    scopes: [openid, email]
    mfa: { required: true, methods: [sms, totp] }
resources:`,
);

describe('SMS code through the dev outbox', () => {
  let nyckel: TestNyckel;
  beforeAll(async () => {
    nyckel = await startTestNyckel({
      clients: parseClientsFile(clientsYaml, 'test-clients.yaml'),
      env: {
        NYCKEL_TRUST_PROXY: 'true',
        NYCKEL_CODE_RESEND_COOLDOWN: '0',
        NYCKEL_SMS_BUDGET_PER_NUMBER: '3',
        NYCKEL_SMS_BUDGET_PER_ACCOUNT: '4',
        NYCKEL_SMS_BUDGET_PER_IP: '6',
      },
    });
  });
  afterAll(() => nyckel?.stop());

  test('password, then a code by SMS (Aiai): acr mfa and amr pwd+sms; the text ends with the WebOTP line', async () => {
    const e164 = newNumber();
    const { email } = await newUser(nyckel, [{ e164 }]);
    const { config, start, browser, page: codePage, post } = await smsSent(nyckel, email);
    let page = codePage;
    onCodePage(page);
    expect(await smsTo(nyckel, e164)).toHaveLength(1);
    expect(page.html).not.toContain(e164.slice(3));
    // No stronger method on this account: no hint.
    expect(page.html).not.toContain('id="stronger-method"');
    expect(textOf(page.html)).toContain(
      `We have sent a text message to your registered mobile number (xxxx-xxxx${e164.slice(-2)}). Type the code from it below. It is valid for 5 minutes.`,
    );
    expect(page.html).toContain('autocomplete="one-time-code"');
    // The start page, opened by its address: the number masked, a field to type one, and nothing sent.
    const startPage = await browser.go(page.url.replace(/\/challenge\/[^/]+$/, ''));
    expect(textOf(startPage.html)).toContain(`xxxx-xxxx${e164.slice(-2)}`);
    expect(startPage.html).not.toContain(e164.slice(3));
    expect(startPage.html).toMatch(/<input id="typed" name="typed" type="tel" inputmode="tel" autocomplete="tel"/);
    expect(startPage.html).not.toContain('id="stronger-method"');
    expect(await smsTo(nyckel, e164)).toHaveLength(1);
    const [sms] = await smsTo(nyckel, e164);
    const code = smsCode(sms.text);
    expect(sms).toMatchObject({ transport: 'outbox', status: 'sent', purpose: 'sms', subject: null });
    expect(sms.text).toBe(`Your code for Care portal is ${code}. Valid for 5 minutes.\n\n@localhost #${code}`);

    // The dev outbox lists it.
    const outbox = (await (await fetch(`${nyckel.url}/dev/outbox.json?to=${encodeURIComponent(e164)}`)).json()) as Array<Record<string, unknown>>;
    expect(outbox[0]).toMatchObject({ channel: 'sms', to: e164, text: sms.text });
    expect(await (await fetch(`${nyckel.url}/dev/outbox`)).text()).toContain(`#${code}`);

    page = await post(page, '/verify', { code });
    const tokens = await tokensFrom(config, start, page);
    expect(tokens.claims()).toMatchObject({ acr: 'urn:nyckel:acr:mfa', amr: ['pwd', 'sms', 'mfa'] });
  });

  test('in Swedish: the text, the page and "Skicka kod igen"', async () => {
    const e164 = newNumber();
    const { email } = await newUser(nyckel, [{ e164 }], 'sv');
    const { page } = await smsSent(nyckel, email, { params: { ui_locales: 'sv' } });
    onCodePage(page);
    expect(await smsTo(nyckel, e164)).toHaveLength(1);
    expect(textOf(page.html)).toContain(`Vi har nu skickat ett sms till ditt registrerade mobilnummer (xxxx-xxxx${e164.slice(-2)}).`);
    expect(textOf(page.html)).toContain('Giltighetstid: 5 minuter.');
    expect(textOf(page.html)).toContain('Skicka kod igen');
    const code = smsCode((await smsTo(nyckel, e164))[0].text);
    expect((await smsTo(nyckel, e164))[0].text).toBe(`Din kod till Care portal är ${code}. Giltig i 5 minuter.\n\n@localhost #${code}`);
  });

  test('a typed number: national or international form; an unregistered one gets the same answer and no SMS', async () => {
    const e164 = newNumber();
    const { email } = await newUser(nyckel, [{ e164 }]);
    const { page: startPage, post } = await smsPage(nyckel, email);
    const national = `0${e164.slice(3, 5)}-${e164.slice(5, 8)} ${e164.slice(8, 10)} ${e164.slice(10)}`;
    const known = await post(startPage, '/start', { typed: national });
    expect(await smsTo(nyckel, e164)).toHaveLength(1);
    const stranger = '+46 70 999 88 77';
    const before = await nyckel.db.prisma.delivery.count({ where: { channel: 'sms' } });
    const unknown = await post(startPage, '/start', { typed: stranger });
    expect(await nyckel.db.prisma.delivery.count({ where: { channel: 'sms' } })).toBe(before);
    const shape = (p: Page) => textOf(p.html).replace(/xxxx-xxxx\d\d/g, 'NUMBER');
    expect(unknown.status).toBe(known.status);
    expect(shape(unknown)).toBe(shape(known));
    // The decoy cannot be answered, not even with the code sent to the real number.
    const realCode = smsCode((await smsTo(nyckel, e164))[0].text);
    const answered = await post(unknown, '/verify', { code: realCode });
    expect(answered.status).toBe(401);
  });

  test('wrong number formats get a clear message and nothing is sent', async () => {
    const { email, user } = await newUser(nyckel, [{ e164: newNumber() }]);
    const { page: startPage, post } = await smsPage(nyckel, email);
    const before = await nyckel.db.prisma.delivery.count({ where: { channel: 'sms' } });
    for (const typed of ['not a number', '+46 12', '12345678901234567890123', '+46 70 123 45 67 89 00', 'alice@example.com']) {
      const page = await post(startPage, '/start', { typed });
      expect(page.status).toBe(400);
      expect(textOf(page.html)).toContain('That is not a phone number we can read. Type it with country code');
    }
    expect(await nyckel.db.prisma.delivery.count({ where: { channel: 'sms' } })).toBe(before);
    expect(await nyckel.db.prisma.factorChallenge.count({ where: { userId: user.id } })).toBe(0);
  });

  test('a number in a country that is not allowed is refused and audited; nothing is sent', async () => {
    const foreign = '+4915123456780';
    const { email, user } = await newUser(nyckel, [{ e164: foreign }]);
    const { page: startPage, post } = await smsPage(nyckel, email);
    const page = await post(startPage, '/start', { target: firstTarget(startPage) });
    expect(page.status).toBe(400);
    expect(textOf(page.html)).toContain('We cannot send text messages to numbers in that country.');
    expect(await smsTo(nyckel, foreign)).toHaveLength(0);
    expect(await refusals(nyckel, user.id)).toEqual(['country']);
    // Typed, too (a number not registered is refused the same way: the country says nothing about the account).
    const typed = await post(startPage, '/start', { typed: '+1 202 555 0143' });
    expect(textOf(typed.html)).toContain('We cannot send text messages to numbers in that country.');
  });

  test('the hourly budget per number', async () => {
    const e164 = newNumber();
    const { email, user } = await newUser(nyckel, [{ e164 }]);
    const { page: codePage, post } = await smsSent(nyckel, email);
    onCodePage(codePage);
    expect(await smsTo(nyckel, e164)).toHaveLength(1);
    let page = await post(codePage, '/resend', {});
    page = await post(page, '/resend', {});
    expect(await smsTo(nyckel, e164)).toHaveLength(3);
    const refused = await post(page, '/resend', {});
    expect(refused.status).toBe(429);
    expect(textOf(refused.html)).toMatch(/Too many text messages have been sent\. Try again in \d+ min\b/);
    expect(await smsTo(nyckel, e164)).toHaveLength(3);
    expect(await refusals(nyckel, user.id)).toEqual(['budget_number']);
    // The last code sent still works.
    const last = await post(page, '/verify', { code: smsCode((await smsTo(nyckel, e164))[0].text) });
    expect(last.url).toContain('code=');
  });

  test('the hourly budget per account', async () => {
    const [a, b] = [newNumber(), newNumber()];
    const { email, user } = await newUser(nyckel, [{ e164: a }, { e164: b }]);
    const { page: startPage, post } = await smsPage(nyckel, email);
    let page = await post(startPage, '/start', { typed: a });
    page = await post(page, '/resend', {});
    page = await post(page, '/resend', {});
    page = await post(startPage, '/start', { typed: b });
    expect((await smsTo(nyckel, a)).length + (await smsTo(nyckel, b)).length).toBe(4);
    const refused = await post(page, '/resend', {});
    expect(refused.status).toBe(429);
    expect(await smsTo(nyckel, b)).toHaveLength(1);
    expect(await refusals(nyckel, user.id)).toEqual(['budget_account']);
  });

  test('the hourly budget per client IP', async () => {
    const ip = newIp();
    const numbers = [newNumber(), newNumber(), newNumber()];
    const users = await Promise.all(numbers.map((e164) => newUser(nyckel, [{ e164 }])));
    for (const i of [0, 1]) {
      const { page: codePage, post } = await smsSent(nyckel, users[i].email, { ip });
      onCodePage(codePage);
      const page = await post(codePage, '/resend', {});
      await post(page, '/resend', {});
      expect(await smsTo(nyckel, numbers[i])).toHaveLength(3);
    }
    // The third user's code, sent at once after the password, is refused: the start page says why.
    const { page: refused } = await smsSent(nyckel, users[2].email, { ip });
    expect(refused.status).toBe(429);
    expect(textOf(refused.html)).toContain('Too many text messages have been sent.');
    expect(await smsTo(nyckel, numbers[2])).toHaveLength(0);
    expect(await refusals(nyckel, users[2].user.id)).toEqual(['budget_ip']);
    // From another address the same user can still get a code.
    const other = await smsSent(nyckel, users[2].email);
    onCodePage(other.page);
    expect(await smsTo(nyckel, numbers[2])).toHaveLength(1);
  });

  test('wrong codes lock SMS for the user in every session; a resend does not reset the count', async () => {
    const e164 = newNumber();
    const { email } = await newUser(nyckel, [{ e164 }]);
    const { page: codePage, post } = await smsSent(nyckel, email);
    onCodePage(codePage);
    let page = codePage;
    const wrong = () => (smsCode(smsText) === '000000' ? '111111' : '000000');
    let smsText = (await smsTo(nyckel, e164))[0].text;
    for (let i = 0; i < 3; i++) {
      page = await post(page, '/verify', { code: wrong() });
      expect(page.status).toBe(401);
    }
    expect(textOf(page.html)).toContain('You have 2 more attempt(s)');
    page = await post(page, '/resend', {});
    smsText = (await smsTo(nyckel, e164))[0].text;
    for (let i = 0; i < 2; i++) page = await post(page, '/verify', { code: wrong() });
    page = await post(page, '/verify', { code: smsCode(smsText) });
    expect(page.status).toBe(429);
    expect(textOf(page.html)).toMatch(/Too many wrong codes\. Try again in \d+ min\b/);
    // Locked for the user, not the session: another sign-in is refused too.
    const other = await smsSent(nyckel, email);
    onCodePage(other.page);
    const locked = await other.post(other.page, '/verify', { code: smsCode((await smsTo(nyckel, e164))[0].text) });
    expect(locked.status).toBe(429);
  });

  test('a code works once, also under 10 parallel submissions, and not in another sign-in', async () => {
    const e164 = newNumber();
    const { email } = await newUser(nyckel, [{ e164 }]);
    const { page, post } = await smsSent(nyckel, email);
    onCodePage(page);
    const code = smsCode((await smsTo(nyckel, e164))[0].text);
    const { page: otherStarted, post: otherPost } = await smsSent(nyckel, email);
    onCodePage(otherStarted);
    expect(await smsTo(nyckel, e164)).toHaveLength(2);
    const otherChallenge = /\/challenge\/([0-9a-f-]{36})\//.exec(otherStarted.html)![1];
    // The first sign-in's challenge id in the second sign-in: not found there.
    const firstChallenge = /\/challenge\/([0-9a-f-]{36})\//.exec(page.html)![1];
    const crossed = await otherPost(otherStarted, '/verify', { code });
    expect(crossed.status).toBe(401);
    expect(firstChallenge).not.toBe(otherChallenge);
    const results = await Promise.all(Array.from({ length: 10 }, () => post(page, '/verify', { code })));
    expect(results.filter((r) => r.url.includes('code='))).toHaveLength(1);
    // The others are refused, or (arriving after the winner ended the sign-in) told they are already signed in; none gets a code.
    for (const r of results.filter((r) => !r.url.includes('code='))) expect(r.status >= 400 || textOf(r.html).includes('You are already signed in')).toBe(true);
  });

  test('a client that leaves sms out of its methods does not offer it', async () => {
    const { email } = await newUser(nyckel, [{ e164: newNumber() }]);
    const config = await relyingParty(nyckel.url, 'selfservice');
    const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/selfservice-cb', scope: 'openid email' });
    const browser = new FormBrowser(callbackStop);
    let page = await browser.go(start.url.toString());
    page = await browser.submit(page, '/login', { email, password: TEST_PASSWORD });
    const uid = /\/interaction\/([^/]+)\//.exec(new URL(page.url).pathname)![1];
    const choose = await browser.go(`${nyckel.url}/interaction/${uid}/mfa?choose=1`);
    expect(textOf(choose.html)).toContain('Code by email');
    expect(textOf(choose.html)).not.toContain('Code by SMS');
    const sms = await browser.go(`${nyckel.url}/interaction/${uid}/mfa/sms`);
    expect(sms.status).toBe(404);
    // An unverified number is no target either.
    const { email: unverifiedOnly } = await newUser(nyckel, [{ e164: newNumber(), verified: false }]);
    const flow = await smsPage(nyckel, unverifiedOnly);
    expect(flow.page.status).toBe(404);
  });

  test('NIST 800-63B: with a stronger method on the account, the SMS page suggests it', async () => {
    const e164 = newNumber();
    const { email, user } = await newUser(nyckel, [{ e164 }]);
    await nyckel.db.prisma.factorEnrolment.create({ data: { userId: user.id, type: 'totp', label: 'Phone', confirmed: true } });
    const { page: startPage, post } = await smsPage(nyckel, email, { clientId: 'carestrong' });
    expect(startPage.status).toBe(200);
    expect(startPage.html).toContain('id="stronger-method"');
    expect(textOf(startPage.html)).toContain('SMS is the least secure method. You also have a safer one:');
    expect(startPage.html).toMatch(/href="\/interaction\/[^"]+\/mfa\/totp"/);
    const page = await post(startPage, '/start', { target: firstTarget(startPage) });
    expect(page.html).toContain('id="stronger-method"');
  });
});
