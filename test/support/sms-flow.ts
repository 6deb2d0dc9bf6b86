import { expect } from '@jest/globals';
import * as oidc from 'openid-client';
import { FormBrowser, type Page } from './browser.ts';
import { TEST_PASSWORD, type TestNyckel } from './nyckel.ts';
import { relyingParty, startAuthorization } from './relying-party.ts';
import { smsTo as outboxSms } from './mail.ts';

/** The SMS sign-in as the flow tests script it: users with numbers, the password step, the code. */
export const callbackStop = (url: URL) => url.port === '4000';
let counter = 0;
let ipCounter = 0;
export const newIp = () => `10.9.${Math.floor(++ipCounter / 250)}.${ipCounter % 250}`;
/** A valid Swedish mobile number of its own for each use. */
export const newNumber = () => `+467012${String(++counter * 7 + 10000).slice(-5)}`;

export async function newUser(nyckel: TestNyckel, phones: Array<{ e164: string; verified?: boolean }>, locale: 'en' | 'sv' = 'en') {
  const email = `sms${++counter}@care.example`;
  const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale });
  for (const phone of phones) {
    await nyckel.db.prisma.userPhone.create({ data: { userId: user.id, e164: phone.e164, verifiedAt: phone.verified === false ? null : new Date() } });
  }
  return { email, user };
}

export type FlowOptions = { clientId?: string; ip?: string; params?: Record<string, string> };

/**
 * The password step, stopped where the second step begins (`…/mfa/<primary>?send=1`, not yet
 * followed), so that the request that may send comes from `ip` too. Every form post comes from `ip`
 * (the test server trusts X-Forwarded-For).
 */
export async function passwordStep(nyckel: TestNyckel, email: string, options: FlowOptions = {}) {
  const clientId = options.clientId ?? 'care';
  const ip = options.ip ?? newIp();
  const config = await relyingParty(nyckel.url, clientId);
  const start = await startAuthorization(config, { redirect_uri: `http://localhost:4000/${clientId}-cb`, scope: 'openid email', ...options.params });
  const browser = new FormBrowser((url) => callbackStop(url) || url.searchParams.get('send') === '1');
  const post = (from: Page, action: string | RegExp, fields: Record<string, string>) =>
    browser.submit(from, action, fields, { headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': ip } });
  const login = await post(await browser.go(start.url.toString()), '/login', { email, password: TEST_PASSWORD });
  return { config, start, browser, post, ip, next: login.url };
}

/** Password step, then the SMS start page opened by its address (a direct GET: nothing is sent at once). */
export async function smsPage(nyckel: TestNyckel, email: string, options: FlowOptions = {}) {
  const flow = await passwordStep(nyckel, email, options);
  const mfaPath = new URL(flow.next).pathname.replace(/\/mfa(\/.*)?$/, '/mfa/sms');
  const page = await flow.browser.go(new URL(mfaPath, nyckel.url).toString());
  return { ...flow, page };
}

/**
 * The sign-in as the user lives it: after the password SMS (the primary) starts at once, the code
 * goes to the one number and the browser lands on the code page (or, if sending failed, on the start
 * page saying why).
 */
export async function smsSent(nyckel: TestNyckel, email: string, options: FlowOptions = {}) {
  const flow = await passwordStep(nyckel, email, options);
  expect(flow.next).toMatch(/\/mfa\/sms\?send=1$/);
  const page = await flow.browser.go(flow.next, { headers: { 'x-forwarded-for': flow.ip } });
  return { ...flow, page };
}

export const onCodePage = (page: Page) => expect(new URL(page.url).pathname).toMatch(/\/mfa\/sms\/challenge\/[0-9a-f-]{36}$/);

/** The code from the text's last line (`@host #123456`, for WebOTP and iOS). */
export function smsCode(text: string): string {
  const match = /\n@\S+ #(\d{6})$/.exec(text);
  if (!match) throw new Error(`no code in SMS:\n${text}`);
  return match[1];
}

export const firstTarget = (page: Page) => /name="target"[^>]*value="([0-9a-f-]{36})"/.exec(page.html)![1];

export async function tokensFrom(config: oidc.Configuration, start: Awaited<ReturnType<typeof startAuthorization>>, page: Page) {
  expect(page.url).toContain('code=');
  return oidc.authorizationCodeGrant(config, new URL(page.url), { pkceCodeVerifier: start.verifier, expectedState: start.state, expectedNonce: start.nonce });
}

export async function smsTo(nyckel: TestNyckel, e164: string) {
  return outboxSms(nyckel.db.prisma, e164);
}

export async function refusals(nyckel: TestNyckel, userId: string) {
  const rows = await nyckel.db.prisma.auditEvent.findMany({ where: { userId, type: 'sms.refused' }, orderBy: { id: 'asc' } });
  return rows.map((row) => (row.data as { reason: string }).reason);
}
