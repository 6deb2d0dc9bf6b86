import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { FormBrowser, textOf, type Page } from '../support/browser.ts';
import { codeIn, latestMail } from '../support/mail.ts';
import { makeBankIdCertificates, personalNumberFor, startFakeBankId, type FakeBankId } from '../support/bankid-fake.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';

/**
 * Binding BankID on the account pages: a signed-in user (with the second factor they have) signs once
 * with BankID; the personal number of that order is then theirs. The fake RP API runs over mutual TLS.
 */
jest.setTimeout(120_000);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let fake: FakeBankId;
let nyckel: TestNyckel;
let counter = 0;

beforeAll(async () => {
  fake = await startFakeBankId(makeBankIdCertificates());
  nyckel = await startTestNyckel({ env: fake.env() });
});
afterAll(async () => {
  await nyckel?.stop();
  await fake?.close();
});

/** A user whose verified address is their second factor, signed in to /account with it. */
async function signedInToAccount() {
  const email = `bind${++counter}@care.example`;
  const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
  const browser = new FormBrowser();
  let page = await browser.go(new URL('/account', nyckel.url).toString());
  page = await browser.submit(page, '/login', { email, password: TEST_PASSWORD });
  // The second step for the account pages: the email code.
  if (!/\/mfa\/email-code/.test(page.url)) page = await browser.go(new URL(page.url.replace(/\/mfa(\/.*)?$/, '/mfa/email-code'), nyckel.url).toString());
  page = await browser.submit(page, '/start', { target: /name="target"[^>]*value="([0-9a-f-]{36})"/.exec(page.html)![1] });
  page = await browser.submit(page, '/verify', { code: codeIn((await latestMail(nyckel.db.prisma, email)).text) });
  expect(new URL(page.url).pathname).toBe('/account');
  return { email, user, browser, page };
}

async function pollUntilSettled(browser: FormBrowser, page: Page) {
  const statusPath = /data-status-url="([^"]+)"/.exec(page.html)![1];
  for (let i = 0; i < 20; i++) {
    const body = JSON.parse((await browser.request(new URL(`${statusPath}?mode=qr`, nyckel.url).toString())).html) as { status: string; message?: string };
    if (body.status !== 'pending') return body;
    await sleep(700);
  }
  throw new Error('still pending');
}

describe('binding BankID on the account pages', () => {
  test('signing once binds the number: listed masked, sealed, mailed and audited', async () => {
    const { email, user, browser, page } = await signedInToAccount();
    expect(textOf(page.html)).toContain('Add BankID');
    const personalNumber = personalNumberFor('19800101', 700 + counter);
    fake.state.nextScript = { hints: ['outstandingTransaction', 'userSign'], end: { complete: personalNumber } };
    const bankIdPage = await browser.go(new URL('/account/add/bankid', nyckel.url).toString());
    expect(bankIdPage.status).toBe(200);
    expect(bankIdPage.html).toContain('bankid:///?autostarttoken=');
    expect((await pollUntilSettled(browser, bankIdPage)).status).toBe('verified');
    const done = await browser.submit(bankIdPage, '/verify', {});
    expect(new URL(done.url).pathname).toBe('/account');
    expect(textOf(done.html)).toContain('The new sign-in method is ready');
    const row = await nyckel.db.prisma.factorEnrolment.findFirst({ where: { userId: user.id, type: 'bankid' } });
    expect(row?.label).toMatch(/^19xxxxxx-xx\d\d$/);
    expect(row?.secret).not.toBeNull();
    expect(JSON.stringify(row?.data)).not.toContain(personalNumber.slice(2));
    expect(textOf(done.html)).not.toContain('Add BankID');
    expect((await latestMail(nyckel.db.prisma, email)).text).toContain('A new sign-in method was added');
    expect(
      (await nyckel.db.prisma.auditEvent.findMany({ where: { userId: user.id, type: 'account.method_added' } })).map(
        (e) => (e.data as { factor: string }).factor,
      ),
    ).toEqual(['bankid']);
  });

  test('a cancelled order binds nothing and says why; BankID unreachable gives a clear 503', async () => {
    const { user, browser } = await signedInToAccount();
    fake.state.nextScript = { hints: ['userSign'], end: { failed: 'userCancel' } };
    const bankIdPage = await browser.go(new URL('/account/add/bankid', nyckel.url).toString());
    const settled = await pollUntilSettled(browser, bankIdPage);
    expect(settled.status).toBe('failed');
    const refused = await browser.submit(bankIdPage, '/verify', {});
    expect(refused.status).toBe(400);
    expect(await nyckel.db.prisma.factorEnrolment.count({ where: { userId: user.id, type: 'bankid' } })).toBe(0);

    fake.state.down = true;
    try {
      const down = await browser.go(new URL('/account/add/bankid', nyckel.url).toString());
      expect(down.status).toBe(503);
      expect(textOf(down.html)).toMatch(/BankID/);
    } finally {
      fake.state.down = false;
    }
  });
});
