import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { FormBrowser, textOf, type Page } from '../support/browser.ts';
import { codeIn, openDelivery } from '../support/mail.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, startAuthorization } from '../support/relying-party.ts';

/**
 * Mail flooding (issue 13, section 3): every send of a code or link to one address has one cooldown,
 * and hourly budgets per address, account and IP; an address that is not registered gets exactly the
 * same answers.
 */

const callbackStop = (url: URL) => url.port === '4000';
let counter = 0;
let ipCounter = 0;
const newIp = () => `10.13.${Math.floor(++ipCounter / 250)}.${ipCounter % 250}`;

async function newUser(nyckel: TestNyckel, extraAddresses: string[] = []) {
  const email = `flood${++counter}@scb.example`;
  const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
  for (const address of extraAddresses) await nyckel.db.prisma.userEmail.create({ data: { userId: user.id, address, verifiedAt: new Date() } });
  return { email, user };
}

/** A sign-in to the selfservice portal up to the email-code start page (opened by its address); every post comes from `ip`. */
async function emailCodePage(nyckel: TestNyckel, email: string, options: { ip?: string; params?: Record<string, string> } = {}) {
  const ip = options.ip ?? newIp();
  const config = await relyingParty(nyckel.url, 'selfservice');
  const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/selfservice-cb', scope: 'openid email', ...options.params });
  // Stopped before the code the primary method sends at once: these tests count the start page's own sends.
  const browser = new FormBrowser((url) => callbackStop(url) || url.searchParams.get('send') === '1');
  const post = (from: Page, action: string | RegExp, fields: Record<string, string>) =>
    browser.submit(from, action, fields, { headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': ip } });
  const login = await post(await browser.go(start.url.toString()), '/login', { email, password: TEST_PASSWORD });
  expect(new URL(login.url).pathname).toMatch(/\/mfa\/email-code$/);
  const page = await browser.go(login.url.replace(/\?send=1$/, ''));
  expect(page.status).toBe(200);
  expect(page.html).toContain('/mfa/email-code/start');
  return { browser, page, post, ip };
}

const firstTarget = (page: Page) => /name="target"[^>]*value="([0-9a-f-]{36})"/.exec(page.html)![1];
const challengeOf = (page: Page) => /\/challenge\/([0-9a-f-]{36})/.exec(page.url)?.[1];
/** What a person sees, with the address and the seconds to wait taken out. */
const shape = (page: Page) =>
  `${page.status} ${textOf(page.html)
    .replace(/\S+@\S+/g, 'ADDRESS')
    .replace(/\d+/g, 'N')}`;

async function signInMails(nyckel: TestNyckel, to: string) {
  const rows = await nyckel.db.prisma.delivery.findMany({
    where: { recipient: to, purpose: { in: ['email-code', 'email-link', 'email-enrolment'] } },
    orderBy: { createdAt: 'asc' },
  });
  return rows.map((row) => openDelivery(nyckel.db.prisma, row));
}

async function mailRefusals(nyckel: TestNyckel, userId: string) {
  const rows = await nyckel.db.prisma.auditEvent.findMany({ where: { userId, type: 'mail.refused' }, orderBy: { id: 'asc' } });
  return rows.map((row) => (row.data as { reason: string }).reason);
}

async function refusalCount(nyckel: TestNyckel, limiter: string): Promise<number> {
  const { body } = await nyckel.metrics.exposition();
  return Number(new RegExp(`^nyckel_rate_limit_refusals_total\\{limiter="${limiter}"\\} (\\d+)$`, 'm').exec(body)?.[1] ?? 0);
}

describe('one cooldown for every send to an address (NYCKEL_CODE_RESEND_COOLDOWN=30)', () => {
  let nyckel: TestNyckel;
  beforeAll(async () => {
    nyckel = await startTestNyckel({ env: { NYCKEL_TRUST_PROXY: 'true', NYCKEL_CODE_RESEND_COOLDOWN: '30' } });
  });
  afterAll(() => nyckel?.stop());

  test('eight "Send code" posts at once send one mail; every answer is the code page of that one code', async () => {
    const { email } = await newUser(nyckel);
    const { page, post } = await emailCodePage(nyckel, email);
    const target = firstTarget(page);
    const answers = await Promise.all(Array.from({ length: 8 }, () => post(page, '/start', { target })));
    const mails = await signInMails(nyckel, email);
    expect(mails).toHaveLength(1);
    for (const answer of answers) {
      expect(answer.status).toBe(200);
      expect(textOf(answer.html)).toContain('We sent a code to');
    }
    expect(new Set(answers.map(challengeOf))).toEqual(new Set([challengeOf(answers[0])]));
    const done = await post(answers[0], '/verify', { code: codeIn(mails[0].text) });
    expect(done.url).toContain('code=');
  });

  test('a second "Send code" of the same sign-in continues to the code sent; another sign-in is told when it may send (sv), 429', async () => {
    const { email, user } = await newUser(nyckel);
    const { page, post } = await emailCodePage(nyckel, email);
    const first = await post(page, '/start', { target: firstTarget(page) });
    const again = await post(page, '/start', { target: firstTarget(page) });
    expect(again.status).toBe(200);
    expect(challengeOf(again)).toBe(challengeOf(first));
    expect(await signInMails(nyckel, email)).toHaveLength(1);

    const other = await emailCodePage(nyckel, email, { params: { ui_locales: 'sv' } });
    const refused = await other.post(other.page, '/start', { target: firstTarget(other.page) });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(20);
    expect(textOf(refused.html)).toMatch(/Vänta (2\d|30) sekunder innan du skickar en ny kod/);
    expect(await signInMails(nyckel, email)).toHaveLength(1);
    expect(await mailRefusals(nyckel, user.id)).toEqual(['cooldown']);
    // The first sign-in's code still works.
    const done = await post(first, '/verify', { code: codeIn((await signInMails(nyckel, email))[0].text) });
    expect(done.url).toContain('code=');
  });

  test('"Resend code" and the email link to the same address share the cooldown', async () => {
    const { email } = await newUser(nyckel);
    const { page, post } = await emailCodePage(nyckel, email);
    const sent = await post(page, '/start', { target: firstTarget(page) });
    const resent = await post(sent, '/resend', {});
    expect(resent.status).toBe(429);
    expect(textOf(resent.html)).toMatch(/Wait \d+ seconds before sending a new code/);
    const link = await emailCodePage(nyckel, email);
    const linkPage = await link.browser.go(link.page.url.replace(/\/mfa\/email-code$/, '/mfa/email-link'));
    const refused = await link.post(linkPage, '/start', { target: firstTarget(linkPage) });
    expect(refused.status).toBe(429);
    expect(await signInMails(nyckel, email)).toHaveLength(1);
  });

  test('an address that is not registered gets exactly the answers a registered one gets', async () => {
    const { email } = await newUser(nyckel);
    const stranger = `stranger${counter}@elsewhere.example`;
    const answers = async (typed: string) => {
      const first = await emailCodePage(nyckel, email);
      const sent = await first.post(first.page, '/start', { typed });
      const again = await first.post(first.page, '/start', { typed });
      const second = await emailCodePage(nyckel, email);
      const refused = await second.post(second.page, '/start', { typed });
      expect(challengeOf(again)).toBe(challengeOf(sent));
      return [sent, again, refused];
    };
    const registered = await answers(email.toUpperCase());
    const unregistered = await answers(stranger);
    expect(registered.map((p) => p.status)).toEqual([200, 200, 429]);
    expect(unregistered.map(shape)).toEqual(registered.map(shape));
    expect(await signInMails(nyckel, email)).toHaveLength(1);
    expect(await signInMails(nyckel, stranger)).toHaveLength(0);
  });
});

describe('hourly mail budgets per address, account and IP', () => {
  let nyckel: TestNyckel;
  beforeAll(async () => {
    nyckel = await startTestNyckel({
      env: {
        NYCKEL_TRUST_PROXY: 'true',
        NYCKEL_CODE_RESEND_COOLDOWN: '0',
        NYCKEL_MAIL_BUDGET_PER_ADDRESS: '3',
        NYCKEL_MAIL_BUDGET_PER_ACCOUNT: '5',
        NYCKEL_MAIL_BUDGET_PER_IP: '8',
        NYCKEL_MAX_CONTACT_EMAILS: '5',
      },
    });
  });
  afterAll(() => nyckel?.stop());

  test('per address: the fourth mail is refused, audited and counted; an unregistered address gets the same answers', async () => {
    const registered = await newUser(nyckel);
    const other = await newUser(nyckel);
    const stranger = `stranger${counter}@elsewhere.example`;
    const before = await refusalCount(nyckel, 'mail_budget');
    const fourSends = async (email: string, typed: string) => {
      const { page, post } = await emailCodePage(nyckel, email);
      const answers: Page[] = [];
      for (let i = 0; i < 4; i++) answers.push(await post(page, '/start', { typed }));
      return answers;
    };
    const real = await fourSends(registered.email, registered.email);
    const decoy = await fourSends(other.email, stranger);
    expect(real.map((p) => p.status)).toEqual([200, 200, 200, 429]);
    expect(textOf(real[3].html)).toMatch(/Too many emails have been sent\. Try again in \d+ min\b/);
    expect(Number(real[3].headers.get('retry-after'))).toBeGreaterThan(3000);
    expect(decoy.map(shape)).toEqual(real.map(shape));
    expect(await signInMails(nyckel, registered.email)).toHaveLength(3);
    expect(await signInMails(nyckel, stranger)).toHaveLength(0);
    expect(await mailRefusals(nyckel, registered.user.id)).toEqual(['budget_address']);
    expect(await mailRefusals(nyckel, other.user.id)).toEqual(['budget_address']);
    expect(await refusalCount(nyckel, 'mail_budget')).toBe(before + 2);
  });

  test('per account: sends to several of its addresses count together', async () => {
    const second = `second${counter}@scb.example`;
    const { email, user } = await newUser(nyckel, [second]);
    const { page, post } = await emailCodePage(nyckel, email);
    for (let i = 0; i < 3; i++) expect((await post(page, '/start', { typed: email })).status).toBe(200);
    for (let i = 0; i < 2; i++) expect((await post(page, '/start', { typed: second })).status).toBe(200);
    const refused = await post(page, '/start', { typed: second });
    expect(refused.status).toBe(429);
    expect(await signInMails(nyckel, second)).toHaveLength(2);
    expect(await mailRefusals(nyckel, user.id)).toEqual(['budget_account']);
  });

  test('per IP: sign-ins of several accounts from one address count together', async () => {
    const ip = newIp();
    const users = [await newUser(nyckel), await newUser(nyckel), await newUser(nyckel)];
    for (const [i, sends] of [3, 3, 2].entries()) {
      const { page, post } = await emailCodePage(nyckel, users[i].email, { ip });
      for (let n = 0; n < sends; n++) expect((await post(page, '/start', { typed: users[i].email })).status).toBe(200);
    }
    const { page, post } = await emailCodePage(nyckel, users[2].email, { ip });
    expect((await post(page, '/start', { typed: users[2].email })).status).toBe(429);
    expect(await mailRefusals(nyckel, users[2].user.id)).toEqual(['budget_ip']);
    // Another IP still may.
    const elsewhere = await emailCodePage(nyckel, users[2].email);
    expect((await elsewhere.post(elsewhere.page, '/start', { typed: users[2].email })).status).toBe(200);
  });

  test("the account pages: proving an added (anyone's) address is mailed at most the budget", async () => {
    const { email, user } = await newUser(nyckel);
    // No verified address: the account pages need the password only.
    await nyckel.db.prisma.userEmail.updateMany({ where: { userId: user.id }, data: { verifiedAt: null } });
    const victim = `victim${counter}@elsewhere.example`;
    const ip = newIp();
    const browser = new FormBrowser(callbackStop);
    const post = (from: Page, action: string | RegExp, fields: Record<string, string>) =>
      browser.submit(from, action, fields, { headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': ip } });
    let overview = await browser.go(new URL('/account', nyckel.url).toString());
    overview = await post(overview, '/login', { email, password: TEST_PASSWORD });
    expect(new URL(overview.url).pathname).toBe('/account');
    const added = await post(overview, '/account/emails', { value: victim });
    expect(new URL(added.url).pathname).toMatch(/^\/account\/verify\/email\//);
    const before = await refusalCount(nyckel, 'mail_budget');
    const row = await nyckel.db.prisma.userEmail.findFirstOrThrow({ where: { userId: user.id, address: victim } });
    const again: Page[] = [];
    for (let i = 0; i < 3; i++) {
      overview = await browser.go(new URL('/account', nyckel.url).toString());
      again.push(await post(overview, `/account/emails/${row.id}/verify`, {}));
    }
    expect(again.map((p) => p.status)).toEqual([200, 200, 429]);
    expect(textOf(again[2].html)).toMatch(/Too many emails have been sent\. Try again in \d+ min\b/);
    expect(await signInMails(nyckel, victim)).toHaveLength(3);
    expect(await mailRefusals(nyckel, user.id)).toEqual(['budget_address']);
    expect(await refusalCount(nyckel, 'mail_budget')).toBe(before + 1);
  });
});
