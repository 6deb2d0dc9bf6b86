import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import { FormBrowser, textOf, type Page } from '../support/browser.ts';
import { codeIn, latestMail, linkIn } from '../support/mail.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, startAuthorization } from '../support/relying-party.ts';

let nyckel: TestNyckel;
const callbackStop = (url: URL) => url.port === '4000';
// Stops before the primary method's code is sent at once, for tests of the start page's own sends.
const beforeSendStop = (url: URL) => callbackStop(url) || url.searchParams.get('send') === '1';
let counter = 0;

beforeAll(async () => {
  nyckel = await startTestNyckel({ env: { NYCKEL_CODE_RESEND_COOLDOWN: '0' } });
});
afterAll(() => nyckel?.stop());

async function newUser(extraAddresses: string[] = []) {
  const email = `user${++counter}@scb.example`;
  const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
  for (const address of extraAddresses) {
    await nyckel.db.prisma.userEmail.create({ data: { userId: user.id, address, verifiedAt: new Date() } });
  }
  return email;
}

async function passwordStep(clientId: string, email: string, params: Record<string, string> = {}, browser = new FormBrowser(callbackStop)) {
  const config = await relyingParty(nyckel.url, clientId);
  const start = await startAuthorization(config, { redirect_uri: `http://localhost:4000/${clientId}-cb`, scope: 'openid email', ...params });
  let page = await browser.go(start.url.toString());
  page = await browser.submit(page, '/login', { email, password: TEST_PASSWORD });
  return { config, start, browser, page };
}

async function tokensFrom(config: oidc.Configuration, start: Awaited<ReturnType<typeof startAuthorization>>, page: Page) {
  expect(page.url).toContain('code=');
  return oidc.authorizationCodeGrant(config, new URL(page.url), { pkceCodeVerifier: start.verifier, expectedState: start.state, expectedNonce: start.nonce });
}

describe('email one-time code (TDC)', () => {
  test('password, then a code by email: acr mfa and amr pwd+otp', async () => {
    const email = await newUser();
    // The primary method (the client's first, email code) starts at once: the code page, the code sent.
    const { config, start, browser, page: codePage } = await passwordStep('selfservice', email);
    let page = codePage;
    expect(new URL(page.url).pathname).toMatch(/\/mfa\/email-code\/challenge\/[0-9a-f-]{36}$/);
    expect(textOf(page.html)).toContain('We sent a code to');
    expect(textOf(page.html)).toMatch(/us…r\d+@sc…le/);
    expect(await nyckel.db.prisma.delivery.count({ where: { recipient: email } })).toBe(1);
    const mail = await latestMail(nyckel.db.prisma, email);
    expect(mail.subject).toBe('Your sign-in code for Customer self-service');
    expect(mail.text).toContain('If you did not try to sign in');
    page = await browser.submit(page, '/verify', { code: codeIn(mail.text) });
    const tokens = await tokensFrom(config, start, page);
    expect(tokens.claims()).toMatchObject({ acr: 'urn:nyckel:acr:mfa', amr: ['pwd', 'otp', 'mfa'] });
  });

  test('wrong codes lock the method for every session; resend does not reset the count', async () => {
    const email = await newUser();
    const { browser, page: codePage } = await passwordStep('selfservice', email);
    let page = codePage;
    expect(new URL(page.url).pathname).toMatch(/\/mfa\/email-code\/challenge\/[0-9a-f-]{36}$/);
    for (let i = 0; i < 3; i++) {
      page = await browser.submit(page, '/verify', { code: '000000' === codeIn((await latestMail(nyckel.db.prisma, email)).text) ? '111111' : '000000' });
      expect(page.status).toBe(401);
    }
    expect(textOf(page.html)).toContain('You have 2 more attempt(s)');
    page = await browser.submit(page, '/resend', {});
    const resentCode = codeIn((await latestMail(nyckel.db.prisma, email)).text);
    for (let i = 0; i < 2; i++) page = await browser.submit(page, '/verify', { code: resentCode === '000000' ? '111111' : '000000' });
    // Five wrong codes: locked, even with the right code, and in a new session from elsewhere.
    page = await browser.submit(page, '/verify', { code: resentCode });
    expect(page.status).toBe(429);
    expect(textOf(page.html)).toMatch(/Too many wrong codes\. Try again in \d+ min\b/);
    const other = await passwordStep('selfservice', email);
    const otherPage = await other.browser.submit(other.page, '/verify', { code: codeIn((await latestMail(nyckel.db.prisma, email)).text) });
    expect(otherPage.status).toBe(429);
  });

  test('a code works once, also under 20 parallel submissions', async () => {
    const email = await newUser();
    const { browser, page } = await passwordStep('selfservice', email);
    expect(new URL(page.url).pathname).toMatch(/\/mfa\/email-code\/challenge\/[0-9a-f-]{36}$/);
    const code = codeIn((await latestMail(nyckel.db.prisma, email)).text);
    const results = await Promise.all(Array.from({ length: 20 }, () => browser.submit(page, '/verify', { code })));
    expect(results.filter((r) => r.url.includes('code='))).toHaveLength(1);
    // The other 19 are the same right answer: never "too many wrong codes", and nothing counted.
    for (const r of results) expect([r.status, textOf(r.html)]).not.toEqual([429, expect.anything()]);
    for (const r of results) expect(textOf(r.html)).not.toContain('Too many wrong codes');
    const user = await nyckel.db.prisma.user.findUniqueOrThrow({ where: { email } });
    expect(await nyckel.db.prisma.auditEvent.count({ where: { userId: user.id, type: 'factor.failed' } })).toBe(0);
  });

  test('an address that is not registered gets the same answer and no mail', async () => {
    const email = await newUser();
    const { browser, page: first } = await passwordStep('selfservice', email, {}, new FormBrowser(beforeSendStop));
    // The start page, where an address can be typed: opened by its address (no code sent at once).
    const start = await browser.go(first.url.replace(/\?send=1$/, ''));
    expect(start.html).toContain('name="typed"');
    const before = await nyckel.db.prisma.delivery.count();
    const unknown = await browser.submit(start, '/start', { typed: 'stranger@elsewhere.example' });
    const known = await browser.submit(start, '/start', { typed: email.toUpperCase() });
    expect(await nyckel.db.prisma.delivery.count()).toBe(before + 1);
    const shape = (p: Page) => textOf(p.html).replace(/\S+@\S+/g, 'ADDRESS');
    expect(unknown.status).toBe(known.status);
    expect(shape(unknown)).toBe(shape(known));
  });
});

describe('email one-time link (IDEP.WEB)', () => {
  async function sendLink(email: string, remember = false) {
    const flow = await passwordStep('idep', email);
    // One method: straight to it.
    expect(flow.page.html).toContain('/mfa/email-link/start');
    const page = await flow.browser.submit(flow.page, '/start', {
      target: /value="([0-9a-f-]{36})"/.exec(flow.page.html)![1],
      ...(remember ? { remember: 'yes' } : {}),
    });
    expect(textOf(page.html)).toContain('You may close this window');
    return { ...flow, waiting: page, link: linkIn((await latestMail(nyckel.db.prisma, email)).text) };
  }

  test('the link opened in the same browser: GET asks for a click, POST confirms, the waiting page continues', async () => {
    const email = await newUser();
    const { config, start, browser, waiting, link } = await sendLink(email);
    const mail = await latestMail(nyckel.db.prisma, email);
    expect(mail.subject).toBe('Finish signing in to IDEP.WEB');
    expect(mail.html).not.toMatch(/<img|track/i);

    const landing = await browser.go(link);
    expect(landing.status).toBe(200);
    expect(textOf(landing.html)).toContain('Finish signing in');
    // A scanner's GET consumed nothing: the link still works.
    const statusUrl = /data-status-url="([^"]+)"/.exec(waiting.html)![1];
    expect(JSON.parse((await browser.go(new URL(statusUrl, nyckel.url).toString())).html)).toEqual({ status: 'pending' });
    const confirmed = await browser.submit(landing, /\/link\//, {});
    expect(textOf(confirmed.html)).toContain('You are confirmed');
    expect(JSON.parse((await browser.go(new URL(statusUrl, nyckel.url).toString())).html)).toEqual({ status: 'verified' });

    const done = await browser.submit(waiting, '/mfa/continue', {});
    const tokens = await tokensFrom(config, start, done);
    expect(tokens.claims()).toMatchObject({ acr: 'urn:nyckel:acr:mfa', amr: ['pwd', 'otp', 'mfa'] });
    // Used: the link cannot be used again, and the page says so (not "another browser").
    const again = await browser.go(link);
    expect(again.status).toBe(410);
    expect(textOf(again.html)).toContain('has already been used');
  });

  test('the link opened in another browser is refused with an explanation and a code offered', async () => {
    const email = await newUser();
    const { browser, waiting, link } = await sendLink(email);
    const elsewhere = new FormBrowser();
    const page = await elsewhere.go(link);
    expect(page.status).toBe(400);
    expect(textOf(page.html)).toContain('only works in the browser where you started');
    expect(textOf(page.html)).toContain('type the code from the email');
    // The code from the same mail works in the first browser.
    const code = codeIn((await latestMail(nyckel.db.prisma, email)).text);
    const done = await browser.submit(waiting, '/verify', { code });
    expect(done.url).toContain('code=');
  });

  test('20 parallel POSTs of one link: it is used once, and every click just says confirmed (no lock, no error)', async () => {
    const email = await newUser();
    const { browser, link } = await sendLink(email);
    const landing = await browser.go(link);
    const results = await Promise.all(Array.from({ length: 20 }, () => browser.submit(landing, /\/link\//, {})));
    for (const r of results) expect([r.status, textOf(r.html)]).toEqual([200, expect.stringContaining('You are confirmed')]);
    const user = await nyckel.db.prisma.user.findUniqueOrThrow({ where: { email } });
    expect(await nyckel.db.prisma.auditEvent.count({ where: { userId: user.id, type: 'factor.verified' } })).toBe(1);
    expect(await nyckel.db.prisma.auditEvent.count({ where: { userId: user.id, type: 'factor.failed' } })).toBe(0);
  });

  test('remember this browser skips the factor next time, with an honest acr; step-up still asks', async () => {
    const email = await newUser();
    const { browser, landing } = await (async () => {
      const flow = await sendLink(email, true);
      return { ...flow, landing: await flow.browser.go(flow.link) };
    })();
    const confirmed = await browser.submit(landing, /\/link\//, {});
    const done = await browser.submit(confirmed, '/mfa/continue', {});
    expect(done.url).toContain('code=');
    const user = await nyckel.accounts.findByEmail(email);
    const remembered = await nyckel.db.prisma.rememberedBrowser.findMany({ where: { userId: user!.id } });
    expect(remembered).toHaveLength(1);

    // A new sign-in in the same browser (new session after logout is simulated by prompt=login).
    const config = await relyingParty(nyckel.url, 'idep');
    const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/idep-cb', scope: 'openid', prompt: 'login' });
    let page = await browser.go(start.url.toString());
    page = await browser.submit(page, '/login', { email, password: TEST_PASSWORD });
    const tokens = await tokensFrom(config, start, page);
    expect(tokens.claims()).toMatchObject({ acr: 'urn:nyckel:acr:password', amr: ['pwd'] });

    // Step-up: the relying party asks for the second-factor class; the remembered browser does not count.
    const stepUp = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/idep-cb', scope: 'openid', acr_values: 'urn:nyckel:acr:mfa' });
    page = await browser.go(stepUp.url.toString());
    expect(page.html).toContain('/mfa/email-link/start');
    expect(page.html).not.toContain('name="password"');

    // Revoked (e.g. on password change): asked again.
    await nyckel.accounts.setPassword(await nyckel.accounts.requireByLogin(email), 'a brand new passphrase', { actor: 'test' });
    const after = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/idep-cb', scope: 'openid', prompt: 'login' });
    page = await browser.go(after.url.toString());
    page = await browser.submit(page, '/login', { email, password: 'a brand new passphrase' });
    expect(page.html).toContain('/mfa/email-link/start');
  });

  test('an expired link is refused (fake clock: the challenge is moved 31 minutes back)', async () => {
    const email = await newUser();
    const { browser, link } = await sendLink(email);
    await nyckel.db.prisma.factorChallenge.updateMany({ where: { factor: 'email-link', target: email }, data: { expiresAt: new Date(Date.now() - 60_000) } });
    const landing = await browser.go(link);
    const result = await browser.submit(landing, /\/link\//, {});
    expect(result.status).toBe(410);
    expect(textOf(result.html)).toContain('has expired');
  });
});

describe('no usable method yet', () => {
  test('a user whose only address is unverified enrols it during sign-in; the code counts as the factor', async () => {
    const email = `unverified${++counter}@scb.example`;
    const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD });
    await nyckel.db.prisma.userEmail.updateMany({ where: { userId: user.id }, data: { verifiedAt: null } });
    const { config, start, browser, page: enrol } = await passwordStep('selfservice', email);
    expect(textOf(enrol.html)).toContain('Set up a second step');
    let page = await browser.submit(enrol, '/mfa/enrol/email-link/start', { target: /value="([0-9a-f-]{36})"/.exec(enrol.html)![1] });
    page = await browser.submit(page, '/verify', { code: codeIn((await latestMail(nyckel.db.prisma, email)).text) });
    const tokens = await tokensFrom(config, start, page);
    expect(tokens.claims()).toMatchObject({ acr: 'urn:nyckel:acr:mfa' });
    expect((await nyckel.db.prisma.userEmail.findFirst({ where: { userId: user.id } }))!.verifiedAt).not.toBeNull();
  });

  test('a user with no address at all is told to contact an administrator, not signed in', async () => {
    const email = `noaddress${++counter}@scb.example`;
    const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD });
    await nyckel.db.prisma.userEmail.deleteMany({ where: { userId: user.id } });
    const { page } = await passwordStep('selfservice', email);
    expect(page.status).toBe(403);
    expect(textOf(page.html)).toContain('your account has nothing to confirm it is you with yet');
    expect(textOf(page.html)).toContain('Contact your administrator or the app’s support');
    expect(page.url).not.toContain('code=');
  });
});

describe('resend', () => {
  test('"Resend code" waits for its cooldown', async () => {
    const cooled = await startTestNyckel({ env: { NYCKEL_CODE_RESEND_COOLDOWN: '60' } });
    try {
      const email = 'cooldown@scb.example';
      await cooled.accounts.create({ email, password: TEST_PASSWORD });
      const config = await relyingParty(cooled.url, 'selfservice');
      const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/selfservice-cb', scope: 'openid' });
      const browser = new FormBrowser(callbackStop);
      let page = await browser.go(start.url.toString());
      page = await browser.submit(page, '/login', { email, password: TEST_PASSWORD });
      expect(new URL(page.url).pathname).toMatch(/\/mfa\/email-code\/challenge\/[0-9a-f-]{36}$/);
      expect(await cooled.db.prisma.delivery.count({ where: { recipient: email } })).toBe(1);
      const resent = await browser.submit(page, '/resend', {});
      expect(resent.status).toBe(429);
      expect(textOf(resent.html)).toMatch(/Wait \d+ seconds before sending a new code/);
      expect(await cooled.db.prisma.delivery.count({ where: { recipient: email } })).toBe(1);
    } finally {
      await cooled.stop();
    }
  });
});

describe('mail provider down', () => {
  test('the user is told the mail could not be sent yet; nothing is lost and it is retried', async () => {
    let fail = true;
    const sent: string[] = [];
    const flaky = await startTestNyckel({
      mailTransport: {
        name: 'smtp',
        send: async (message) => {
          if (fail) throw new Error('451 temporary failure');
          sent.push(message.to);
        },
      },
    });
    try {
      const email = 'outage@scb.example';
      await flaky.accounts.create({ email, password: TEST_PASSWORD });
      const config = await relyingParty(flaky.url, 'selfservice');
      const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/selfservice-cb', scope: 'openid' });
      const browser = new FormBrowser(callbackStop);
      let page = await browser.go(start.url.toString());
      page = await browser.submit(page, '/login', { email, password: TEST_PASSWORD });
      expect(new URL(page.url).pathname).toMatch(/\/mfa\/email-code\/challenge\/[0-9a-f-]{36}$/);
      for (let i = 0; i < 100 && !(await flaky.db.prisma.delivery.findFirst({ where: { recipient: email } }))!.lastError; i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      page = await browser.go(page.url);
      expect(page.status).toBe(200);
      expect(textOf(page.html)).toContain('We could not send the message yet and keep trying');
      const delivery = await latestMail(flaky.db.prisma, email);
      expect(delivery).toMatchObject({ status: 'queued', lastError: expect.stringContaining('451') });

      // The provider is back: the retry delivers the same mail, and its code signs in.
      fail = false;
      await flaky.db.prisma.delivery.update({ where: { id: delivery.id }, data: { nextAttempt: new Date() } });
      await flaky.mail.dispatcher.deliverDue();
      expect(sent).toEqual([email]);
      page = await browser.submit(page, '/verify', { code: codeIn(delivery.text) });
      expect(page.url).toContain('code=');
    } finally {
      await flaky.stop();
    }
  });
});
