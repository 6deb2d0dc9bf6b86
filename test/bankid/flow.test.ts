import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import * as oidc from 'openid-client';
import { bindPersonalNumber } from '../../src/factors/bankid/binding.ts';
import { qrPayload } from '../../src/factors/bankid/qr.ts';
import { qrSvgDataUrl } from '../../src/web/shared/qr.ts';
import { FormBrowser, textOf, type Page } from '../support/browser.ts';
import {
  DOC_QR_START_SECRET,
  DOC_QR_START_TOKEN,
  makeBankIdCertificates,
  personalNumberFor,
  startFakeBankId,
  type BankIdCertificates,
  type FakeBankId,
} from '../support/bankid-fake.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, startAuthorization } from '../support/relying-party.ts';

/**
 * BankID as the second factor of Aiai (client `eid`: BankID or SMS), against a fake of BankID's RP
 * API v6 on loopback over mutual TLS; openid-client is the relying party.
 */
const callbackStop = (url: URL) => url.port === '4000';
// Each order is collected every two seconds, as BankID asks: the flows take seconds, more on a busy machine.
jest.setTimeout(120_000);

let counter = 0;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const newNumber = () => personalNumberFor('19800101', 100 + ++counter);

let certs: BankIdCertificates;
let fake: FakeBankId;
let nyckel: TestNyckel;

beforeAll(async () => {
  certs = makeBankIdCertificates();
  fake = await startFakeBankId(certs);
  nyckel = await startTestNyckel({ env: fake.env() });
});
afterAll(async () => {
  await nyckel?.stop();
  await fake?.close();
});

async function newUser(options: { personalNumber?: string; phone?: string } = {}) {
  const email = `bankid${++counter}@aiai.example`;
  const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
  if (options.personalNumber) await bindPersonalNumber(nyckel.db.prisma, nyckel.box, user.id, options.personalNumber);
  if (options.phone) await nyckel.db.prisma.userPhone.create({ data: { userId: user.id, e164: options.phone, verifiedAt: new Date() } });
  return { email, user };
}

/** Password step; returns the page the sign-in lands on after it (following redirects). */
async function afterPassword(email: string, params: Record<string, string> = {}) {
  const config = await relyingParty(nyckel.url, 'eid');
  const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/eid-cb', scope: 'openid email', ...params });
  const browser = new FormBrowser(callbackStop);
  let page = await browser.go(start.url.toString());
  page = await browser.submit(page, '/login', { email, password: TEST_PASSWORD });
  return { config, start, browser, page };
}

const statusPathOf = (page: Page) => /data-status-url="([^"]+)"/.exec(page.html)?.[1];

/** Polls the page's status URL as its script does, until it is no longer pending. */
async function pollUntilSettled(browser: FormBrowser, statusPath: string, mode = 'qr') {
  const seen: Array<{ status: string; message?: string; qr?: string }> = [];
  for (let i = 0; i < 20; i++) {
    const response = await browser.request(new URL(`${statusPath}?mode=${mode}`, nyckel.url).toString(), { headers: { accept: 'application/json' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const body = JSON.parse(response.html) as { status: string; message?: string; qr?: string };
    seen.push(body);
    if (body.status !== 'pending') return seen;
    await sleep(700);
  }
  throw new Error(`still pending: ${JSON.stringify(seen.map((s) => s.message))}`);
}

async function attemptOf(uid: string) {
  return nyckel.db.prisma.signInAttempt.findUnique({ where: { uid } });
}
const uidOf = (path: string) => /\/interaction\/([^/]+)\//.exec(path)![1];

describe('BankID sign-in', () => {
  test('success: BankID on the other device, the hint messages, then acr mfa and amr pwd+swk+user in the ID token', async () => {
    const personalNumber = newNumber();
    const { email, user } = await newUser({ personalNumber });
    fake.state.nextScript = { hints: ['outstandingTransaction', 'userSign'], end: { complete: personalNumber } };
    const { config, start, browser, page } = await afterPassword(email);
    // The only method: straight to it; the order is made and the page offers both kinds of BankID.
    expect(page.status).toBe(200);
    expect(page.url).toMatch(/\/mfa\/bankid\?send=1$/);
    const text = textOf(page.html);
    expect(text).toContain('Would you like to use BankID on this device or Mobile BankID on another device?');
    expect(text).toContain('BankID on this device');
    expect(text).toContain('Mobile BankID on another device');
    // No status before the person has chosen a way (BankID's guidelines).
    expect(page.html).toContain('<p id="bankid-message" role="status" aria-live="polite"></p>');
    const order = fake.last()!;
    expect(page.html).toContain(`href="bankid:///?autostarttoken=`);
    expect(page.html).toContain('&amp;redirect=null"');
    expect(page.html).toMatch(/<img id="bankid-qr" src="data:image\/svg\+xml;base64,/);
    expect(page.html).toContain('<script src="/assets/bankid.js" defer></script>');
    // The QR secret never reaches the browser.
    expect(page.html).not.toContain(fake.state.qrStartSecret);
    expect(order.endUserIp).toMatch(/^(127\.0\.0\.1|::1)$/);
    expect(Buffer.from(String(order.body.userVisibleData), 'base64').toString('utf8')).toBe('Sign in to Aiai');

    const statusPath = statusPathOf(page)!;
    const seen = await pollUntilSettled(browser, statusPath);
    const messages = [...new Set(seen.map((s) => s.message).filter(Boolean))];
    expect(messages).toEqual(['Start your BankID app.', 'Enter your security code in the BankID app and select Identify.']);
    expect(seen.at(-1)).toEqual({ status: 'verified' });
    // Each QR code shown is BankID's formula over the order's qrStartToken/qrStartSecret (here the
    // documentation's) and the whole seconds since the order was made, the first one second 0 or 1.
    const bySecond = await Promise.all(Array.from({ length: 30 }, (_, second) => qrSvgDataUrl(qrPayload(DOC_QR_START_TOKEN, DOC_QR_START_SECRET, second))));
    const secondOf = (src?: string) => bySecond.indexOf(src ?? '');
    expect(secondOf(/<img id="bankid-qr" src="([^"]+)"/.exec(page.html)![1])).toBeGreaterThanOrEqual(0);
    expect(secondOf(/<img id="bankid-qr" src="([^"]+)"/.exec(page.html)![1])).toBeLessThanOrEqual(1);
    const seconds = seen.filter((s) => s.status === 'pending').map((s) => secondOf(s.qr));
    expect(seconds.every((second) => second >= 0)).toBe(true);
    expect(new Set(seconds).size).toBeGreaterThan(2);
    // One /collect per two seconds, however often the page asks.
    expect(order.collects).toBe(3);
    expect(seen.length).toBeGreaterThan(order.collects);

    // The page comes back to the challenge: the factor is recorded once and the sign-in finishes.
    const done = await browser.go(new URL(statusPath.replace(/\/status$/, ''), nyckel.url).toString());
    expect(done.url).toContain('code=');
    const tokens = await oidc.authorizationCodeGrant(config, new URL(done.url), {
      pkceCodeVerifier: start.verifier,
      expectedState: start.state,
      expectedNonce: start.nonce,
    });
    expect(tokens.claims()).toMatchObject({ sub: user.id, acr: 'urn:nyckel:acr:mfa', amr: ['pwd', 'swk', 'user', 'mfa'] });
    const enrolment = await nyckel.db.prisma.factorEnrolment.findFirst({ where: { userId: user.id, type: 'bankid' } });
    expect(enrolment!.lastUsedAt).not.toBeNull();
  });

  test('the page coming back several times at once: the factor is recorded once, the sign-in finishes once, no 500', async () => {
    const personalNumber = newNumber();
    const { email, user } = await newUser({ personalNumber });
    fake.state.nextScript = { hints: [], end: { complete: personalNumber } };
    const { browser, page } = await afterPassword(email);
    const statusPath = statusPathOf(page)!;
    expect((await pollUntilSettled(browser, statusPath)).at(-1)!.status).toBe('verified');
    const challengeUrl = new URL(statusPath.replace(/\/status$/, ''), nyckel.url).toString();
    const answers = await Promise.all(Array.from({ length: 4 }, () => browser.request(challengeUrl)));
    expect(answers.filter((a) => a.status >= 500)).toEqual([]);
    // Each answer continues the one sign-in (back to the authorization endpoint); it is resumed once.
    const resumed = answers.filter((a) => a.status === 303 && /\/auth\//.test(a.headers.get('location') ?? ''));
    expect(resumed).toHaveLength(4);
    const followed = await Promise.all(resumed.map((a) => browser.go(new URL(a.headers.get('location')!, nyckel.url).toString())));
    expect(followed.filter((f) => f.url.includes('code='))).toHaveLength(1);
    expect(followed.filter((f) => f.status >= 500)).toEqual([]);
    expect(await nyckel.db.prisma.auditEvent.count({ where: { userId: user.id, type: 'factor.verified' } })).toBe(1);
    expect(await nyckel.db.prisma.auditEvent.count({ where: { userId: user.id, type: 'login.succeeded' } })).toBe(1);
  });

  test('"BankID on this device": the messages for an app started by its link', async () => {
    const personalNumber = newNumber();
    const { email } = await newUser({ personalNumber });
    fake.state.nextScript = { hints: ['outstandingTransaction', 'started'], end: { failed: 'startFailed' } };
    const { browser, page } = await afterPassword(email);
    const seen = await pollUntilSettled(browser, statusPathOf(page)!, 'same');
    expect(seen[0].message).toBe('Trying to start your BankID app.');
    expect(seen.map((s) => s.message)).toContain(
      'Searching for BankID, it may take a little while … If a few seconds have passed and still no BankID has been found, you probably don’t have a BankID which can be used for this identification on this device. If you don’t have a BankID you can get one from your bank.',
    );
    expect(seen.at(-1)).toEqual({
      status: 'failed',
      message:
        'The BankID app couldn’t be found on your computer or mobile device. Please install it and get a BankID from your bank. Install the app from your app store or https://install.bankid.com.',
    });
  });

  test('user cancel in the app: "Action cancelled.", nothing recorded, and a new order can be made', async () => {
    const personalNumber = newNumber();
    const { email, user } = await newUser({ personalNumber });
    fake.state.nextScript = { hints: ['userSign'], end: { failed: 'userCancel' } };
    const { browser, page } = await afterPassword(email);
    const statusPath = statusPathOf(page)!;
    const seen = await pollUntilSettled(browser, statusPath);
    expect(seen.at(-1)).toEqual({ status: 'failed', message: 'Action cancelled.' });
    const challenge = await browser.go(new URL(statusPath.replace(/\/status$/, ''), nyckel.url).toString());
    expect(challenge.status).toBe(400);
    expect(textOf(challenge.html)).toContain('Action cancelled.');
    expect(challenge.html).toMatch(/<a href="\/interaction\/[^"]+\/mfa\/bankid">Try again<\/a>/);
    const attempt = await attemptOf(uidOf(statusPath));
    expect((attempt!.verified as Array<{ factor: string }>).map((v) => v.factor)).toEqual(['password']);
    expect(attempt!.completedAt).toBeNull();
    const failures = await nyckel.db.prisma.auditEvent.count({ where: { userId: user.id, type: 'factor.verified' } });
    expect(failures).toBe(0);

    // Try again: a new order, the old one stays failed.
    fake.state.nextScript = { hints: [], end: { complete: personalNumber } };
    const again = await browser.go(new URL(`/interaction/${uidOf(statusPath)}/mfa/bankid`, nyckel.url).toString());
    expect(again.status).toBe(200);
    const last = await pollUntilSettled(browser, statusPathOf(again)!);
    expect(last.at(-1)!.status).toBe('verified');
  });

  test("expired order: BankID's message for expiredTransaction", async () => {
    const { email } = await newUser({ personalNumber: newNumber() });
    fake.state.nextScript = { hints: ['outstandingTransaction'], end: { failed: 'expiredTransaction' } };
    const { browser, page } = await afterPassword(email);
    const seen = await pollUntilSettled(browser, statusPathOf(page)!);
    expect(seen.at(-1)).toEqual({
      status: 'failed',
      message:
        'The BankID app is not responding. Please check that it is started and that you have internet access. If you don’t have a valid BankID you can get one from your bank. Try again.',
    });
  });

  test('an order older than its lifetime ends as expired without asking BankID', async () => {
    const { email } = await newUser({ personalNumber: newNumber() });
    fake.state.nextScript = { hints: Array(50).fill('outstandingTransaction'), end: { failed: 'expiredTransaction' } };
    const { browser, page } = await afterPassword(email);
    const statusPath = statusPathOf(page)!;
    const id = /challenge\/([0-9a-f-]{36})/.exec(statusPath)![1];
    await nyckel.db.prisma.factorChallenge.update({ where: { id }, data: { expiresAt: new Date(Date.now() - 1000) } });
    const seen = await pollUntilSettled(browser, statusPath);
    expect(seen).toHaveLength(1);
    expect(seen[0].status).toBe('failed');
    expect(seen[0].message).toMatch(/^The BankID app is not responding/);
    expect(fake.last()!.collects).toBe(0);
  });

  test('wrong person: a neutral message that names nobody, an audit event, no factor recorded', async () => {
    const own = newNumber();
    const someoneElse = newNumber();
    const { email, user } = await newUser({ personalNumber: own });
    fake.state.nextScript = { hints: ['userSign'], end: { complete: someoneElse } };
    const { browser, page } = await afterPassword(email);
    const statusPath = statusPathOf(page)!;
    const seen = await pollUntilSettled(browser, statusPath);
    expect(seen.at(-1)).toEqual({
      status: 'failed',
      message: 'The BankID you used is not the one connected to this account. Use your own BankID, or another method.',
    });
    const challenge = await browser.go(new URL(statusPath.replace(/\/status$/, ''), nyckel.url).toString());
    expect(challenge.status).toBe(400);
    for (const html of [challenge.html, JSON.stringify(seen)]) {
      expect(html).not.toContain(someoneElse);
      expect(html).not.toContain(someoneElse.slice(2));
      expect(html).not.toContain('Karlsson');
    }
    const events = await nyckel.db.prisma.auditEvent.findMany({ where: { userId: user.id, type: 'factor.failed' } });
    expect(events.map((e) => e.data)).toEqual([{ factor: 'bankid', reason: 'identity_mismatch' }]);
    expect(JSON.stringify(events.map((e) => e.data))).not.toContain(someoneElse);
    const attempt = await attemptOf(uidOf(statusPath));
    expect((attempt!.verified as Array<{ factor: string }>).map((v) => v.factor)).toEqual(['password']);
  });

  test('BankID unreachable at the start: a clear 503 page, no order written, no 500', async () => {
    const { email, user } = await newUser({ personalNumber: newNumber() });
    fake.state.down = true;
    try {
      const { page } = await afterPassword(email);
      expect(page.status).toBe(503);
      expect(textOf(page.html)).toContain('BankID cannot be reached right now. Nothing has been changed; try again in a moment, or use another method.');
      expect(page.html).not.toContain('data-status-url');
      expect(await nyckel.db.prisma.factorChallenge.count({ where: { userId: user.id } })).toBe(0);
    } finally {
      fake.state.down = false;
    }
  });

  test('BankID failing while collecting (500 internalError): failed with a message, nothing recorded', async () => {
    const { email } = await newUser({ personalNumber: newNumber() });
    fake.state.nextScript = { hints: ['userSign', 'userSign'], end: { complete: '199001012385' } };
    const { browser, page } = await afterPassword(email);
    const statusPath = statusPathOf(page)!;
    fake.state.failCollect = true;
    let seen;
    try {
      seen = await pollUntilSettled(browser, statusPath);
    } finally {
      fake.state.failCollect = false;
    }
    expect(seen.at(-1)).toEqual({
      status: 'failed',
      message: 'BankID cannot be reached right now. Nothing has been changed; try again in a moment, or use another method.',
    });
    const challenge = await browser.go(new URL(statusPath.replace(/\/status$/, ''), nyckel.url).toString());
    expect(challenge.status).toBe(400);
    const attempt = await attemptOf(uidOf(statusPath));
    expect((attempt!.verified as Array<{ factor: string }>).map((v) => v.factor)).toEqual(['password']);
  });

  test('each showing makes a new order and cancels the one before; a sign-in gets ten in ten minutes, then a 429', async () => {
    const { email } = await newUser({ personalNumber: newNumber() });
    fake.state.nextScript = { hints: Array(50).fill('outstandingTransaction'), end: { failed: 'expiredTransaction' } };
    const { browser, page } = await afterPassword(email);
    const bankidUrl = page.url;
    const before = fake.orders.size;
    const first = fake.last()!;
    for (let i = 1; i < 10; i++) expect((await browser.go(bankidUrl)).status).toBe(200);
    expect(fake.orders.size - before).toBe(9);
    expect(first.cancelled).toBe(true);
    expect([...fake.orders.values()].slice(-10).filter((o) => o.cancelled)).toHaveLength(9);
    const refused = await browser.go(bankidUrl);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(500);
    expect(textOf(refused.html)).toContain('You have started BankID too many times. Try again in 10 min, or use another method.');
    expect(fake.orders.size - before).toBe(9);
    // The last order is still open.
    expect(fake.last()!.cancelled).toBe(false);
  });

  test("leaving the page cancels the order at BankID (the beacon's POST), and needs the CSRF token", async () => {
    const { email } = await newUser({ personalNumber: newNumber(), phone: '+46701234599' });
    fake.state.nextScript = { hints: Array(50).fill('outstandingTransaction'), end: { failed: 'expiredTransaction' } };
    const { browser, page } = await afterPassword(email);
    // Two methods: the list first.
    expect(page.html).toContain('/mfa/bankid');
    const bankid = await browser.go(new URL(`/interaction/${uidOf(page.url + '/')}/mfa/bankid`, nyckel.url).toString());
    const statusPath = statusPathOf(bankid)!;
    const order = fake.last()!;
    const csrf = /data-csrf="([^"]+)"/.exec(bankid.html)![1];
    const cancelUrl = new URL(statusPath.replace(/\/status$/, '/cancel'), nyckel.url).toString();
    const forged = await browser.request(cancelUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '_csrf=nope' });
    expect(forged.status).toBe(403);
    expect(order.cancelled).toBe(false);
    const cancelled = await browser.request(cancelUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: csrf }).toString(),
    });
    expect(cancelled.status).toBe(204);
    expect(order.cancelled).toBe(true);
    const seen = await pollUntilSettled(browser, statusPath);
    expect(seen).toEqual([{ status: 'failed', message: 'Action cancelled. Please try again.' }]);

    // The sign-in goes on with another method.
    const sms = await browser.go(new URL(`/interaction/${uidOf(statusPath)}/mfa/sms`, nyckel.url).toString());
    expect(sms.status).toBe(200);
  });
});

describe('binding a BankID', () => {
  test('at sign-in, a user without any second factor binds the BankID by signing once: stored sealed, masked, keyed', async () => {
    const { email, user } = await newUser();
    // A verified address would be a second factor (email code) already: none here.
    await nyckel.db.prisma.userEmail.updateMany({ where: { userId: user.id }, data: { verifiedAt: null } });
    const personalNumber = newNumber();
    fake.state.nextScript = { hints: ['userSign'], end: { complete: personalNumber } };
    const { config, start, browser, page } = await afterPassword(email);
    expect(page.url).toMatch(/\/mfa\/enrol$/);
    expect(textOf(page.html)).toContain('BankID');
    let next = await browser.submit(page, '/mfa/enrol/bankid/start', {});
    expect(next.status).toBe(200);
    expect(textOf(next.html)).toContain('Connect your BankID');
    const statusPath = statusPathOf(next)!;
    expect(statusPath).toMatch(/\/mfa\/enrol\/bankid\/challenge\/[0-9a-f-]{36}\/status$/);
    const seen = await pollUntilSettled(browser, statusPath);
    expect(seen.at(-1)).toEqual({ status: 'verified' });
    next = await browser.submit(next, /\/mfa\/enrol\/bankid\/challenge\/[0-9a-f-]{36}\/verify$/, {});
    expect(next.url).toContain('code=');
    const tokens = await oidc.authorizationCodeGrant(config, new URL(next.url), {
      pkceCodeVerifier: start.verifier,
      expectedState: start.state,
      expectedNonce: start.nonce,
    });
    expect(tokens.claims()).toMatchObject({ acr: 'urn:nyckel:acr:mfa', amr: ['pwd', 'swk', 'user', 'mfa'] });

    const rows = await nyckel.db.prisma.factorEnrolment.findMany({ where: { userId: user.id, type: 'bankid' } });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ confirmed: true, label: `19xxxxxx-xx${personalNumber.slice(10)}` });
    expect(Buffer.from(rows[0].secret!).toString('latin1')).not.toContain(personalNumber);
    expect(nyckel.box.open('bankid-personal-number', rows[0].secret!, rows[0].id).toString()).toBe(personalNumber);
    expect((rows[0].data as { mac: string }).mac).toBe(nyckel.box.mac('bankid-personal-number', personalNumber));
    expect(await nyckel.db.prisma.auditEvent.count({ where: { userId: user.id, type: 'factor.enrolled' } })).toBe(1);
  });

  test('a user who already has a second factor cannot bind a BankID at sign-in (a stolen password would do)', async () => {
    const { email, user } = await newUser({ phone: '+46701234598' });
    await nyckel.db.prisma.userEmail.updateMany({ where: { userId: user.id }, data: { verifiedAt: null } });
    const { browser, page } = await afterPassword(email);
    // Their one number's code is sent at once (the primary method).
    expect(page.url).toMatch(/\/mfa\/sms\/challenge\/[0-9a-f-]{36}$/);
    const uid = uidOf(page.url);
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page.html)![1];
    const refused = await browser.request(new URL(`/interaction/${uid}/mfa/enrol/bankid/start`, nyckel.url).toString(), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: csrf }).toString(),
    });
    expect(refused.status).toBe(404);
  });
});
