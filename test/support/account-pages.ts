import { expect } from '@jest/globals';
import { FormBrowser, type Page } from './browser.ts';
import { TEST_PASSWORD, type TestNyckel } from './nyckel.ts';
import { codeAt, secretIn } from './otp.ts';

export const callbackStop = (url: URL) => url.port === '4000';

/** The account pages as the flow tests drive them, on the Nyckel `current()` gives. */
export function accountPages(current: () => TestNyckel, prefix: string) {
  let counter = 0;

  /** A user whose only address is not verified: no second factor at all. */
  async function newUser(options: { verifiedEmail?: boolean } = {}) {
    const nyckel = current();
    const email = `${prefix}${++counter}@example.test`;
    const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
    if (!options.verifiedEmail) await nyckel.db.prisma.userEmail.updateMany({ where: { userId: user.id }, data: { verifiedAt: null } });
    return { email, user };
  }

  const url = (path: string) => new URL(path, current().url).toString();

  /** Opens /account in a new browser and signs in with the password (and nothing else). */
  async function signInWithPassword(email: string, browser = new FormBrowser(callbackStop)) {
    let page = await browser.go(url('/account'));
    expect(page.url).toMatch(/\/interaction\//);
    page = await browser.submit(page, '/login', { email, password: TEST_PASSWORD });
    return { browser, page };
  }

  async function addApp(browser: FormBrowser, page: Page, label: string, step: number) {
    const setup = await browser.submit(page, '/account/add/totp', {});
    expect(setup.status).toBe(200);
    const secret = secretIn(setup.html);
    const done = await browser.submit(setup, '/verify', { label, code: await codeAt(secret, step) });
    return { secret, done };
  }

  async function audits(userId: string) {
    return (await current().db.prisma.auditEvent.findMany({ where: { userId }, orderBy: { id: 'asc' } })).map((e) => e.type);
  }

  return { newUser, url, signInWithPassword, addApp, audits };
}
