import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import { parseClientsFile } from '../../src/clients/clients-file.ts';
import { TOTP_SECRET_PURPOSE } from '../../src/factors/totp/index.ts';
import { newTotpSecret } from '../../src/factors/totp/otp.ts';
import { FormBrowser, textOf, type Page } from '../support/browser.ts';
import { latestMail, codeIn, smsTo } from '../support/mail.ts';
import { startTestNyckel, TEST_PASSWORD, testClientsYaml, type TestNyckel } from '../support/nyckel.ts';
import { codeAt } from '../support/otp.ts';
import { relyingParty, startAuthorization } from '../support/relying-party.ts';

/**
 * After the password the user's primary method starts at once (TDC: the code box right after the
 * password; Aiai: the SMS goes to the one number); "Use another method" lists the others and the
 * method picked there is the one the sign-in returns to.
 */
const clientsYaml = testClientsYaml.replace(
  'resources:',
  `  - client_id: tdc
    name: TDC Erhverv
    first_party: true
    token_endpoint_auth_method: none
    redirect_uris: [http://localhost:4000/tdc-cb]
    scopes: [openid, email]
    mfa: { required: true, methods: [email-code, sms, totp], remember_days: 20 }
resources:`,
);

const callbackStop = (url: URL) => url.port === '4000';
let nyckel: TestNyckel;
let counter = 0;
const newNumber = () => `+467013${String(++counter * 7 + 10000).slice(-5)}`;

beforeAll(async () => {
  nyckel = await startTestNyckel({ clients: parseClientsFile(clientsYaml, 'test-clients.yaml'), env: { NYCKEL_CODE_RESEND_COOLDOWN: '0' } });
});
afterAll(() => nyckel?.stop());

/** A user with a verified address, and optionally numbers and an authenticator app; `order` is their methods' order (primary first). */
async function newUser(options: { phones?: number; app?: boolean; order?: string[] } = {}) {
  const email = `primary${++counter}@tdc.example`;
  const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
  const phones = Array.from({ length: options.phones ?? 0 }, newNumber);
  for (const e164 of phones) await nyckel.db.prisma.userPhone.create({ data: { userId: user.id, e164, verifiedAt: new Date() } });
  let secret: string | undefined;
  if (options.app) {
    secret = newTotpSecret();
    const row = await nyckel.db.prisma.factorEnrolment.create({ data: { userId: user.id, type: 'totp', label: 'Phone', confirmed: true } });
    await nyckel.db.prisma.factorEnrolment.update({
      where: { id: row.id },
      data: { secret: Buffer.from(nyckel.box.seal(TOTP_SECRET_PURPOSE, secret, row.id)) },
    });
  }
  if (options.order) await nyckel.db.prisma.user.update({ where: { id: user.id }, data: { methodOrder: options.order } });
  return { email, user, phones, secret };
}

/** The password step; `prompt: 'login'` asks for the password again in a browser already signed in. */
async function passwordStep(email: string, browser = new FormBrowser(callbackStop), params: Record<string, string> = {}) {
  const config = await relyingParty(nyckel.url, 'tdc');
  const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/tdc-cb', scope: 'openid email', ...params });
  const login = await browser.go(start.url.toString());
  const page = await browser.submit(login, '/login', { email, password: TEST_PASSWORD });
  const uid = /\/interaction\/([^/]+)\//.exec(new URL(page.url).pathname)?.[1];
  return { config, start, browser, page, uid };
}

async function claims(flow: Awaited<ReturnType<typeof passwordStep>>, page: Page) {
  expect(page.url).toContain('code=');
  const tokens = await oidc.authorizationCodeGrant(flow.config, new URL(page.url), {
    pkceCodeVerifier: flow.start.verifier,
    expectedState: flow.start.state,
    expectedNonce: flow.start.nonce,
  });
  return tokens.claims()!;
}

const mailsTo = (email: string) => nyckel.db.prisma.delivery.count({ where: { recipient: email } });

describe('the primary method starts at once', () => {
  test('an authenticator app as primary: its code page right after the password, no choice page; the code signs in', async () => {
    const { email, secret } = await newUser({ phones: 1, app: true, order: ['totp', 'sms', 'email-code'] });
    const flow = await passwordStep(email);
    expect(new URL(flow.page.url).pathname).toMatch(/\/mfa\/totp$/);
    expect(flow.page.html).toContain('autocomplete="one-time-code"');
    expect(flow.page.html).toContain('mfa?choose=1');
    const done = await flow.browser.submit(flow.page, '/verify', { code: await codeAt(secret!, 0) });
    expect((await claims(flow, done)).amr).toEqual(['pwd', 'otp', 'mfa']);
  });

  test('SMS as primary with one number: the code is sent at once, a reload sends nothing more, and "Don\'t ask again" is on the code page', async () => {
    const { email, user, phones } = await newUser({ phones: 1, order: ['sms', 'email-code'] });
    const flow = await passwordStep(email);
    expect(new URL(flow.page.url).pathname).toMatch(/\/mfa\/sms\/challenge\/[0-9a-f-]{36}$/);
    expect(textOf(flow.page.html)).toContain(`xxxx-xxxx${phones[0].slice(-2)}`);
    expect(await smsTo(nyckel.db.prisma, phones[0])).toHaveLength(1);
    expect(flow.page.html).toContain('name="remember_asked" value="yes"');
    expect(textOf(flow.page.html)).toContain("Don't ask again in this browser for 20 days");

    // Reloaded (or back from the code page): the same code page, no second text.
    const again = await flow.browser.go(`${nyckel.url}/interaction/${flow.uid}/mfa`);
    expect(again.url).toBe(flow.page.url);
    expect(await smsTo(nyckel.db.prisma, phones[0])).toHaveLength(1);

    const [sms] = await smsTo(nyckel.db.prisma, phones[0]);
    const code = /\b(\d{6})\b/.exec(sms.text)![1];
    const done = await flow.browser.submit(flow.page, '/verify', { code, remember: 'yes' });
    expect((await claims(flow, done)).amr).toEqual(['pwd', 'sms', 'mfa']);
    expect(await nyckel.db.prisma.rememberedBrowser.count({ where: { userId: user.id } })).toBe(1);

    // The browser is remembered: the next sign-in asks for no second factor and sends nothing.
    const next = await passwordStep(email, flow.browser, { prompt: 'login' });
    expect(next.page.url).toContain('code=');
    expect(await smsTo(nyckel.db.prisma, phones[0])).toHaveLength(1);
  });

  test('left unticked on the code page, the browser is not remembered', async () => {
    const { email, user } = await newUser({ order: ['email-code'] });
    const flow = await passwordStep(email);
    expect(new URL(flow.page.url).pathname).toMatch(/\/mfa\/email-code\/challenge\/[0-9a-f-]{36}$/);
    const done = await flow.browser.submit(flow.page, '/verify', { code: codeIn((await latestMail(nyckel.db.prisma, email)).text) });
    expect(done.url).toContain('code=');
    expect(await nyckel.db.prisma.rememberedBrowser.count({ where: { userId: user.id } })).toBe(0);
  });

  test('with two numbers the SMS page asks where to send, and nothing is sent before', async () => {
    const { email, phones } = await newUser({ phones: 2, order: ['sms'] });
    const flow = await passwordStep(email);
    expect(new URL(flow.page.url).pathname).toMatch(/\/mfa\/sms$/);
    expect([...flow.page.html.matchAll(/name="target"/g)]).toHaveLength(2);
    for (const e164 of phones) expect(await smsTo(nyckel.db.prisma, e164)).toHaveLength(0);
  });

  test('a page opened by its address alone (a prefetch, a typed URL) sends nothing', async () => {
    const { email, phones } = await newUser({ phones: 1, app: true, order: ['totp', 'sms'] });
    const flow = await passwordStep(email);
    const sms = await flow.browser.go(`${nyckel.url}/interaction/${flow.uid}/mfa/sms`);
    expect(sms.html).toContain('name="target"');
    expect(await smsTo(nyckel.db.prisma, phones[0])).toHaveLength(0);
  });
});

describe('"Use another method" keeps the user\'s choice', () => {
  test('an app as primary, the user picks email: the code is mailed, and the sign-in returns to email, not the app', async () => {
    const { email } = await newUser({ app: true, order: ['totp', 'email-code'] });
    const flow = await passwordStep(email);
    expect(flow.page.url).toMatch(/\/mfa\/totp(\?send=1)?$/);
    const choose = await flow.browser.go(`${nyckel.url}/interaction/${flow.uid}/mfa?choose=1`);
    expect(textOf(choose.html)).toContain('Confirm it is you');
    const href = /href="([^"]*\/mfa\/email-code\?send=1)"/.exec(choose.html)![1];
    const before = await mailsTo(email);
    const code = await flow.browser.go(new URL(href, nyckel.url).toString());
    expect(new URL(code.url).pathname).toMatch(/\/mfa\/email-code\/challenge\/[0-9a-f-]{36}$/);
    expect(await mailsTo(email)).toBe(before + 1);

    // Back at the second step (a wrong turn, the back button): the email code page, no new mail.
    const back = await flow.browser.go(`${nyckel.url}/interaction/${flow.uid}/mfa`);
    expect(back.url).toBe(code.url);
    expect(await mailsTo(email)).toBe(before + 1);
    const done = await flow.browser.submit(back, '/verify', { code: codeIn((await latestMail(nyckel.db.prisma, email)).text) });
    expect((await claims(flow, done)).amr).toEqual(['pwd', 'otp', 'mfa']);
  });

  test("the choice is this sign-in's: the next one starts with the primary again", async () => {
    const { email } = await newUser({ app: true, order: ['totp', 'email-code'] });
    const first = await passwordStep(email);
    await first.browser.go(`${nyckel.url}/interaction/${first.uid}/mfa/email-code?send=1`);
    const next = await passwordStep(email, first.browser, { prompt: 'login' });
    expect(next.page.url).toMatch(/\/mfa\/totp(\?send=1)?$/);
  });
});
