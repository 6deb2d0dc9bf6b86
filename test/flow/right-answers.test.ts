import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import { replaceRecoveryCodes } from '../../src/factors/recovery-code/index.ts';
import { newTotpSecret } from '../../src/factors/totp/otp.ts';
import { TOTP_SECRET_PURPOSE } from '../../src/factors/totp/index.ts';
import { FormBrowser, findForm, textOf, type Page } from '../support/browser.ts';
import { codeIn, latestMail, linkIn } from '../support/mail.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { codeAt } from '../support/otp.ts';
import { relyingParty, startAuthorization } from '../support/relying-party.ts';

// Only wrong answers count against the lock: a right answer repeated (a double submit, a link
// confirmed again) or already used elsewhere never locks the user out.
let nyckel: TestNyckel;
const callbackStop = (url: URL) => url.port === '4000';
let counter = 0;
const MAX_FAILURES = 5;

beforeAll(async () => {
  nyckel = await startTestNyckel({ env: { NYCKEL_CODE_RESEND_COOLDOWN: '0', NYCKEL_FACTOR_MAX_FAILURES: String(MAX_FAILURES) } });
});
afterAll(() => nyckel?.stop());

async function newUser() {
  const email = `right${++counter}@answers.example`;
  const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
  return { email, user };
}

async function passwordStep(clientId: string, email: string) {
  const config = await relyingParty(nyckel.url, clientId);
  const start = await startAuthorization(config, { redirect_uri: `http://localhost:4000/${clientId}-cb`, scope: 'openid email' });
  const browser = new FormBrowser(callbackStop);
  let page = await browser.go(start.url.toString());
  page = await browser.submit(page, '/login', { email, password: TEST_PASSWORD });
  const uid = /\/interaction\/([^/]+)\//.exec(page.url)![1];
  return { config, start, browser, page, uid };
}

type Flow = Awaited<ReturnType<typeof passwordStep>>;

async function claimsOf(flow: Flow, landed: Page) {
  expect(landed.url).toContain('code=');
  const tokens = await oidc.authorizationCodeGrant(flow.config, new URL(landed.url), {
    pkceCodeVerifier: flow.start.verifier,
    expectedState: flow.start.state,
    expectedNonce: flow.start.nonce,
  });
  return tokens.claims()!;
}

/** Posts a page's form without following the answer (the browser moved on: a second click). */
async function postOnly(flow: Flow, page: Page, action: string | RegExp, fields: Record<string, string>) {
  const form = findForm(page.html, action);
  return flow.browser.request(new URL(form.action, page.url).toString(), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ ...form.hidden, ...fields }).toString(),
  });
}

async function emailCodePage(email: string) {
  const flow = await passwordStep('selfservice', email);
  const start = await flow.browser.go(`${nyckel.url}/interaction/${flow.uid}/mfa/email-code`);
  const sent = await flow.browser.submit(start, '/start', { target: /value="([0-9a-f-]{36})"/.exec(start.html)![1] });
  return { flow, sent, code: codeIn((await latestMail(nyckel.db.prisma, email)).text) };
}

const failures = async (userId: string) => nyckel.db.prisma.auditEvent.count({ where: { userId, type: 'factor.failed' } });

describe('a right answer never counts as a wrong one', () => {
  test('"Finish signing in" pressed six times on one email link: confirmed each time, nothing locked', async () => {
    const { email, user } = await newUser();
    const flow = await passwordStep('idep', email);
    const waiting = await flow.browser.submit(flow.page, '/start', { target: /value="([0-9a-f-]{36})"/.exec(flow.page.html)![1] });
    const landing = await flow.browser.go(linkIn((await latestMail(nyckel.db.prisma, email)).text));
    for (let i = 0; i < MAX_FAILURES + 1; i++) {
      const confirmed = await flow.browser.submit(landing, /\/link\//, {});
      expect([confirmed.status, textOf(confirmed.html)]).toEqual([200, expect.stringContaining('You are confirmed')]);
    }
    expect(await failures(user.id)).toBe(0);
    expect((await claimsOf(flow, await flow.browser.submit(waiting, '/mfa/continue', {}))).acr).toBe('urn:nyckel:acr:mfa');
    // The email methods are not locked: the next sign-in's code works.
    const next = await emailCodePage(email);
    const done = await next.flow.browser.submit(next.sent, '/verify', { code: next.code });
    expect((await claimsOf(next.flow, done)).sub).toBe(user.id);
  });

  test('an email code submitted twice (the first answer never seen): the second continues the sign-in', async () => {
    const { email, user } = await newUser();
    const { flow, sent, code } = await emailCodePage(email);
    const first = await postOnly(flow, sent, '/verify', { code });
    expect(first.status).toBe(303);
    const second = await flow.browser.submit(sent, '/verify', { code });
    expect((await claimsOf(flow, second)).sub).toBe(user.id);
    expect(await failures(user.id)).toBe(0);
  });

  test('an app code submitted twice: the second continues; in another sign-in the same code is "already used" and not counted', async () => {
    const { email, user } = await newUser();
    const secret = newTotpSecret();
    const row = await nyckel.db.prisma.factorEnrolment.create({ data: { userId: user.id, type: 'totp', label: 'Phone', confirmed: true } });
    await nyckel.db.prisma.factorEnrolment.update({
      where: { id: row.id },
      data: { secret: Buffer.from(nyckel.box.seal(TOTP_SECRET_PURPOSE, secret, row.id)) },
    });
    const appPage = async () => {
      const flow = await passwordStep('authapp', email);
      return { flow, page: await flow.browser.go(`${nyckel.url}/interaction/${flow.uid}/mfa/totp`) };
    };
    const { flow, page } = await appPage();
    const code = await codeAt(secret, 0);
    expect((await postOnly(flow, page, '/verify', { code })).status).toBe(303);
    expect((await claimsOf(flow, await flow.browser.submit(page, '/verify', { code }))).acr).toBe('urn:nyckel:acr:mfa');
    const { flow: other, page: otherPage } = await appPage();
    for (let i = 0; i < MAX_FAILURES + 1; i++) {
      const replay = await other.browser.submit(otherPage, '/verify', { code });
      expect([replay.status, textOf(replay.html)]).toEqual([400, expect.stringContaining('already been used')]);
    }
    const fresh = await other.browser.submit(otherPage, '/verify', { code: await codeAt(secret, 1) });
    expect((await claimsOf(other, fresh)).sub).toBe(user.id);
  });

  test('a recovery code already used, typed again and again in a new sign-in: "already used", never locked', async () => {
    const { email, user } = await newUser();
    const codes = await replaceRecoveryCodes(nyckel.db.prisma, nyckel.box, user.id, 10);
    const first = await passwordStep('authapp', email);
    const codePage = await first.browser.go(`${nyckel.url}/interaction/${first.uid}/mfa/recovery-code`);
    await first.browser.submit(codePage, '/verify', { code: codes[0] });
    const again = await passwordStep('authapp', email);
    const againPage = await again.browser.go(`${nyckel.url}/interaction/${again.uid}/mfa/recovery-code`);
    for (let i = 0; i < MAX_FAILURES + 1; i++) {
      const replay = await again.browser.submit(againPage, '/verify', { code: codes[0] });
      expect([replay.status, textOf(replay.html)]).toEqual([400, expect.stringContaining('already been used')]);
    }
    const accepted = await again.browser.submit(againPage, '/verify', { code: codes[1] });
    expect(textOf(accepted.html)).toContain('Recovery code accepted');
  });
});
