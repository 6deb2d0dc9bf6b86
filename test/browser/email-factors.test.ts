// The second factor by email in a real Chromium, as the users of IDEP.WEB (one-time link, Swedish)
// and TDC (one-time code, Danish) know it: openid-client is the relying party and redeems the code,
// the mails are read from the dev outbox (the deliveries table), and the browser does everything a
// person would (labels, buttons, a second tab, another browser, the keyboard).
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import type { BrowserContextOptions, Page } from 'playwright-core';
import { messages as messagesOf } from '../support/messages.ts';
import { Chromium, holdRequests, interceptRelyingParty, expectNoSeriousAxeViolations } from '../support/chromium.ts';
import { codeIn, latestMail, linkIn } from '../support/mail.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, startAuthorization, type AuthorizationStart } from '../support/relying-party.ts';

type Msg = ReturnType<typeof messagesOf>;
const sv = messagesOf('sv');
const da = messagesOf('da');

const IDEP = { id: 'idep', name: 'IDEP.WEB', redirectUri: 'http://localhost:4000/idep-cb' };
const TDC = { id: 'selfservice', name: 'Customer self-service', redirectUri: 'http://localhost:4000/selfservice-cb' };
const MFA = { acr: 'urn:nyckel:acr:mfa', amr: ['pwd', 'otp', 'mfa'] };
const PASSWORD_ONLY = { acr: 'urn:nyckel:acr:password', amr: ['pwd'] };

let nyckel: TestNyckel;
let chromium: Chromium;
let idep: oidc.Configuration;
let tdc: oidc.Configuration;

beforeAll(async () => {
  // Resending a code is allowed at once here; its cooldown has its own HTTP-level test.
  [nyckel, chromium] = await Promise.all([startTestNyckel({ env: { NYCKEL_CODE_RESEND_COOLDOWN: '0' } }), Chromium.launch()]);
  [idep, tdc] = await Promise.all([relyingParty(nyckel.url, IDEP.id), relyingParty(nyckel.url, TDC.id)]);
});
afterEach(() => chromium?.closeContexts());
afterAll(async () => {
  await chromium?.close();
  await nyckel?.stop();
});

/** A user with `email` as the primary (verified) address, and further verified addresses. */
async function newUser(email: string, otherAddresses: string[] = []) {
  const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD }, { actor: 'test' });
  for (const address of otherAddresses) {
    await nyckel.db.prisma.userEmail.create({ data: { userId: user.id, address, verifiedAt: new Date() } });
  }
  return user;
}

const mailsTo = (address: string) => nyckel.db.prisma.delivery.count({ where: { recipient: address } });

/** A fresh browser context (no cookies) whose first tab has its visits to the relying party intercepted. */
async function openBrowser(options: BrowserContextOptions = {}) {
  const context = await chromium.newContext(options);
  const page = await context.newPage();
  const rp = await interceptRelyingParty(page);
  return { context, page, rp };
}

function authorize(config: oidc.Configuration, redirectUri: string, params: Record<string, string> = {}) {
  return startAuthorization(config, { redirect_uri: redirectUri, scope: 'openid email', ...params });
}

/** Opens the authorization URL, checks it lands on the login page, and signs in with the password. */
async function passwordStep(page: Page, start: AuthorizationStart, messages: Msg, email: string, password = TEST_PASSWORD) {
  const response = await page.goto(start.url.toString());
  expect(response?.status()).toBe(200);
  expect(new URL(page.url()).pathname).toMatch(/^\/interaction\/[\w-]+$/);
  await page.getByRole('heading', { level: 1, name: messages('login.title'), exact: true }).waitFor();
  await page.getByLabel(messages('login.name_label.username_or_email'), { exact: true }).fill(email);
  await page.getByLabel(messages('login.password_label'), { exact: true }).fill(password);
  await page.getByRole('button', { name: messages('login.submit'), exact: true }).click();
}

/** Redeems the code with openid-client (iss, state, nonce, PKCE) and checks what the ID token says. */
async function expectSignedIn(config: oidc.Configuration, callback: URL, start: AuthorizationStart, userId: string, expected: { acr: string; amr: string[] }) {
  expect(callback.searchParams.get('iss')).toBe(nyckel.url);
  expect(callback.searchParams.get('error')).toBeNull();
  const tokens = await oidc.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: start.verifier,
    expectedState: start.state,
    expectedNonce: start.nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims()!;
  expect(claims.sub).toBe(userId);
  expect(claims.acr).toBe(expected.acr);
  expect(claims.amr).toEqual(expected.amr);
  return tokens;
}

const htmlLang = (page: Page) => page.locator('html').getAttribute('lang');
const focusedId = (page: Page) => page.evaluate(() => document.activeElement?.id ?? null);
const heading = (page: Page, name: string) => page.getByRole('heading', { level: 1, name, exact: true });

/**
 * IDEP.WEB in Swedish, from the password to the waiting page ("Kontrollera din e-post"): the one
 * method is shown at once, with the registered address masked. Returns the link and code of the mail.
 */
async function idepToWaitingPage(page: Page, email: string, masked: string, options: { remember?: boolean } = {}) {
  const start = await authorize(idep, IDEP.redirectUri, { ui_locales: 'sv' });
  await passwordStep(page, start, sv, email);

  await heading(page, sv('factors.email-link.name')).waitFor();
  // IDEP.WEB allows one method: no list to choose from, and no "another method" link.
  expect(new URL(page.url()).pathname).toMatch(/^\/interaction\/[\w-]+\/mfa\/email-link$/);
  expect(await page.getByRole('link', { name: sv('mfa.other_method') }).count()).toBe(0);
  const addresses = page.getByRole('group', { name: sv('factors.email-link.choose_target'), exact: true });
  const address = addresses.getByRole('radio', { name: masked, exact: true });
  expect(await address.isChecked()).toBe(true);
  const remember = page.getByRole('checkbox', { name: sv('mfa.remember', { days: 20 }), exact: true });
  expect(await remember.isChecked()).toBe(false);
  if (options.remember) {
    await remember.check();
    expect(await remember.isChecked()).toBe(true);
  }
  const before = await mailsTo(email);
  await page.getByRole('button', { name: sv('factors.email-link.send'), exact: true }).click();

  await heading(page, sv('link.sent_title')).waitFor();
  expect(new URL(page.url()).pathname).toMatch(/\/mfa\/email-link\/challenge\/[0-9a-f-]{36}$/);
  expect(await mailsTo(email)).toBe(before + 1);
  const mail = await latestMail(nyckel.db.prisma, email);
  expect(mail.subject).toBe(sv('mail.link.subject', { client: IDEP.name }));
  return { start, link: linkIn(mail.text), code: codeIn(mail.text) };
}

describe('second factor by email in Chromium', () => {
  test('IDEP.WEB (sv): the link from the mail opened in a second tab; a GET asks for a click, the first tab continues by itself', async () => {
    const email = 'user1@scb.example';
    const user = await newUser(email, ['karin.privat@example.se']);
    const { context, page, rp } = await openBrowser({ locale: 'en-GB' });
    const start = await authorize(idep, IDEP.redirectUri, { ui_locales: 'sv' });
    await passwordStep(page, start, sv, email);

    // The start page: Swedish, the registered addresses masked, the first (primary) one chosen.
    await heading(page, sv('factors.email-link.name')).waitFor();
    expect(await htmlLang(page)).toBe('sv');
    expect(await page.title()).toBe(`${sv('factors.email-link.name')} · Nyckel`);
    expect(await page.getByText(sv('common.signing_in_to', { client: IDEP.name })).isVisible()).toBe(true);
    const addresses = page.getByRole('group', { name: sv('factors.email-link.choose_target'), exact: true });
    expect(await addresses.getByRole('radio').count()).toBe(2);
    expect(await addresses.getByRole('radio', { name: 'us…r1@sc…le', exact: true }).isChecked()).toBe(true);
    expect(await addresses.getByRole('radio', { name: 'ka…at@ex…se', exact: true }).isChecked()).toBe(false);
    expect(await page.content()).not.toContain(email);
    expect(await page.content()).not.toContain('karin.privat');
    const remember = page.getByRole('checkbox', { name: sv('mfa.remember', { days: 20 }), exact: true });
    expect(await remember.isVisible()).toBe(true);
    expect(await remember.isChecked()).toBe(false);
    expect(sv('mfa.remember', { days: 20 })).toBe('Fråga inte igen i den här webbläsaren de kommande 20 dagarna');
    expect(await page.getByLabel(sv('mfa.typed_label'), { exact: true }).inputValue()).toBe('');
    await expectNoSeriousAxeViolations(page);

    // "Skicka länk" (the box stays unticked) → the waiting page.
    await page.getByRole('button', { name: 'Skicka länk', exact: true }).click();
    await heading(page, sv('link.sent_title')).waitFor();
    expect(await page.getByText(sv('link.sent', { target: 'us…r1@sc…le' }), { exact: true }).isVisible()).toBe(true);
    const mayClose = sv('link.close_window', { minutes: 30 });
    expect(mayClose).toMatch(/^Du kan stänga det här fönstret/);
    expect(await page.getByText(mayClose, { exact: true }).isVisible()).toBe(true);
    const waitingUrl = page.url();
    await expectNoSeriousAxeViolations(page);

    const mail = await latestMail(nyckel.db.prisma, email);
    expect(mail.subject).toBe(sv('mail.link.subject', { client: IDEP.name }));
    const link = linkIn(mail.text);
    expect(link.startsWith(`${nyckel.url}/interaction/`)).toBe(true);

    // The link in a second tab of the same browser: a page that asks for a click.
    const tab = await context.newPage();
    const landing = await tab.goto(link);
    expect(landing?.status()).toBe(200);
    await heading(tab, sv('link.confirm_title')).waitFor();
    expect(await htmlLang(tab)).toBe('sv');
    expect(await tab.getByText(sv('link.confirm_text', { client: IDEP.name }), { exact: true }).isVisible()).toBe(true);
    await expectNoSeriousAxeViolations(tab);

    // Opening it (as a mail scanner would) signed nothing in: the status is still "pending" (and the
    // first tab's question, held by the server, is not answered).
    const statusUrl = (await page.locator('#wait').getAttribute('data-status-url'))!;
    const status = await page.evaluate(async (url) => (await fetch(url, { headers: { accept: 'application/json' } })).json(), statusUrl);
    expect(status).toEqual({ status: 'pending' });
    expect(page.url()).toBe(waitingUrl);
    expect(rp.visited).toEqual([]);

    await tab.getByRole('button', { name: 'Slutför inloggningen', exact: true }).click();
    await heading(tab, sv('link.confirmed_title')).waitFor();
    expect(await tab.getByText(sv('link.confirmed_text'), { exact: true }).isVisible()).toBe(true);
    await expectNoSeriousAxeViolations(tab);

    // Nobody touches the first tab: its script notices and continues to the app.
    const callback = await rp.arrival();
    expect(callback.origin + callback.pathname).toBe(IDEP.redirectUri);
    expect(rp.visited).toHaveLength(1);
    expect(new URL(tab.url()).pathname).toMatch(/\/link\//);
    await expectSignedIn(idep, callback, start, user.id, MFA);
    // The box was not ticked: this browser is not remembered.
    expect((await context.cookies()).map((c) => c.name)).not.toContain('nyckel.remember');
  });

  test('the link opened in another browser: a clear 400 page; the code from the same mail, typed in the first browser, signs in', async () => {
    const email = 'user2@scb.example';
    const user = await newUser(email);
    const { page, rp } = await openBrowser({ locale: 'sv-SE' });
    const { start, link, code } = await idepToWaitingPage(page, email, 'us…r2@sc…le');

    const elsewhere = await (await chromium.newContext({ locale: 'sv-SE' })).newPage();
    const response = await elsewhere.goto(link);
    expect(response?.status()).toBe(400);
    expect(await htmlLang(elsewhere)).toBe('sv');
    await heading(elsewhere, sv('link.other_browser_title')).waitFor();
    const explanation = sv('link.other_browser');
    expect((await elsewhere.getByRole('alert').textContent())?.trim()).toBe(explanation);
    expect(explanation).toContain('fungerar bara i den webbläsare där du påbörjade inloggningen');
    expect(explanation).toContain('skriv koden från mejlet');
    // Nothing there can complete the sign-in.
    expect(await elsewhere.getByRole('button').count()).toBe(0);
    await expectNoSeriousAxeViolations(elsewhere);

    // Back in the first browser: "Skriv koden från mejlet i stället" opens the code form.
    const codeField = page.getByLabel(sv('mfa.code_label'), { exact: true });
    expect(await codeField.isVisible()).toBe(false);
    await page.getByText(sv('link.type_code_instead'), { exact: true }).click();
    expect(await codeField.isVisible()).toBe(true);
    expect(await codeField.getAttribute('autocomplete')).toBe('one-time-code');
    await codeField.fill(code);
    await page.getByRole('button', { name: sv('mfa.verify'), exact: true }).click();

    const callback = await rp.arrival();
    expect(callback.origin + callback.pathname).toBe(IDEP.redirectUri);
    await expectSignedIn(idep, callback, start, user.id, MFA);
  });

  test('TDC (da from Accept-Language): the method list, a code by email, a wrong code, "Send koden igen", the new code', async () => {
    const email = 'user3@tdc.example';
    const user = await newUser(email);
    const { page, rp } = await openBrowser({ locale: 'da-DK' });
    const start = await authorize(tdc, TDC.redirectUri);
    expect(start.url.searchParams.has('ui_locales')).toBe(false);
    await passwordStep(page, start, da, email);

    // The primary method (the client's first, a code by email) starts at once: its code page, one mail.
    await heading(page, da('factors.email-code.name')).waitFor();
    expect(await htmlLang(page)).toBe('da');
    expect(new URL(page.url()).pathname).toMatch(/\/mfa\/email-code\/challenge\/[0-9a-f-]{36}$/);
    expect(await mailsTo(email)).toBe(1);

    // "Brug en anden metode": the list of both methods.
    await page.getByRole('link', { name: 'Brug en anden metode', exact: true }).click();
    await heading(page, da('mfa.choose_title')).waitFor();
    expect(await page.getByText(da('mfa.choose_intro'), { exact: true }).isVisible()).toBe(true);
    const methods = page.getByRole('list').getByRole('link');
    expect((await methods.allInnerTexts()).map((text) => text.replace(/\s+/g, ' ').trim())).toEqual([
      `${da('factors.email-code.name')} ${da('factors.email-code.hint')}`,
      `${da('factors.email-link.name')} ${da('factors.email-link.hint')}`,
    ]);
    await expectNoSeriousAxeViolations(page);

    // The link (its start page asks where to send it), then "Brug en anden metode" back to the list,
    // then "Engangskode via e-mail": back to the code already sent, no second mail.
    await page.getByRole('link', { name: da('factors.email-link.name') }).click();
    await heading(page, da('factors.email-link.name')).waitFor();
    const addresses = page.getByRole('group', { name: da('factors.email-link.choose_target'), exact: true });
    expect(await addresses.getByRole('radio', { name: 'us…r3@td…le', exact: true }).isChecked()).toBe(true);
    await expectNoSeriousAxeViolations(page);
    await page.getByRole('link', { name: 'Brug en anden metode', exact: true }).click();
    await heading(page, da('mfa.choose_title')).waitFor();
    await page.getByRole('link', { name: 'Engangskode via e-mail' }).click();
    await page.waitForURL(/\/mfa\/email-code\/challenge\/[0-9a-f-]{36}$/);
    expect(await mailsTo(email)).toBe(1);

    // The code page: the cursor waits in the code field, which browsers may fill from the mail.
    await heading(page, da('factors.email-code.name')).waitFor();
    expect(await page.getByText(da('mfa.code_sent', { target: 'us…r3@td…le', minutes: 10 }), { exact: true }).isVisible()).toBe(true);
    const codeField = page.getByLabel(da('mfa.code_label'), { exact: true });
    expect(await codeField.getAttribute('autocomplete')).toBe('one-time-code');
    expect(await codeField.getAttribute('inputmode')).toBe('numeric');
    expect(await focusedId(page)).toBe('code');
    const first = await latestMail(nyckel.db.prisma, email);
    expect(first.subject).toBe(da('mail.code.subject', { client: TDC.name }));
    const firstCode = codeIn(first.text);

    // A wrong code, typed and sent with Enter: an alert with the attempts left, the cursor back in the field.
    const wrong = firstCode === '000000' ? '111111' : '000000';
    const failed = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/verify'));
    await page.keyboard.type(wrong);
    await page.keyboard.press('Enter');
    expect((await failed).status()).toBe(401);
    const alert = page.getByRole('alert');
    expect((await alert.textContent())?.trim()).toBe(da('factor_errors.wrong_code', { left: nyckel.settings.factors.maxFailures - 1 }));
    expect(await codeField.getAttribute('aria-invalid')).toBe('true');
    expect(await codeField.getAttribute('aria-describedby')).toBe(await alert.getAttribute('id'));
    expect(await codeField.inputValue()).toBe('');
    expect(await focusedId(page)).toBe('code');
    await expectNoSeriousAxeViolations(page);

    // "Send koden igen": a new mail, a notice, no error any more.
    await page.getByRole('button', { name: 'Send koden igen', exact: true }).click();
    await page
      .getByRole('status')
      .filter({ hasText: da('mfa.resent') })
      .waitFor();
    expect(await page.getByRole('alert').count()).toBe(0);
    expect(await mailsTo(email)).toBe(2);
    const second = await latestMail(nyckel.db.prisma, email);
    expect(second.id).not.toBe(first.id);
    expect(await focusedId(page)).toBe('code');
    await page.keyboard.type(codeIn(second.text));
    await page.keyboard.press('Enter');

    const callback = await rp.arrival();
    expect(callback.origin + callback.pathname).toBe(TDC.redirectUri);
    await expectSignedIn(tdc, callback, start, user.id, MFA);
  });

  test('remember this browser (IDEP.WEB): no second factor next time, with an honest acr; a new password asks again', async () => {
    const email = 'user4@scb.example';
    const user = await newUser(email);
    const { context, page, rp } = await openBrowser({ locale: 'sv-SE' });
    const first = await idepToWaitingPage(page, email, 'us…r4@sc…le', { remember: true });
    const tab = await context.newPage();
    await tab.goto(first.link);
    await tab.getByRole('button', { name: sv('link.confirm_button'), exact: true }).click();
    await heading(tab, sv('link.confirmed_title')).waitFor();
    await tab.close();
    await expectSignedIn(idep, await rp.arrival(), first.start, user.id, MFA);
    const remembered = (await context.cookies()).find((c) => c.name === 'nyckel.remember');
    expect(remembered?.httpOnly).toBe(true);
    const days = (remembered!.expires * 1000 - Date.now()) / 86_400_000;
    // "de kommande 20 dagarna": the cookie lasts the client's remember_days (to within a few minutes).
    expect(Math.abs(days - 20)).toBeLessThan(0.01);

    // Signing in again in this browser (prompt=login asks for the password again): straight back to the app.
    const again = await authorize(idep, IDEP.redirectUri, { ui_locales: 'sv', prompt: 'login' });
    const shown: string[] = [];
    page.on('response', (r) => {
      if (r.status() === 200 && new URL(r.url()).pathname.startsWith('/interaction/')) shown.push(new URL(r.url()).pathname);
    });
    await passwordStep(page, again, sv, email);
    const callback = await rp.arrival();
    expect(shown).toHaveLength(1);
    expect(await mailsTo(email)).toBe(1);
    // The password was the only thing checked, and the ID token says so.
    await expectSignedIn(idep, callback, again, user.id, PASSWORD_ONLY);

    // A new password revokes every remembered browser: the second factor is asked again.
    const newPassword = 'a brand new passphrase for idep';
    await nyckel.accounts.setPassword(await nyckel.accounts.requireByLogin(email), newPassword, { actor: 'test' });
    const afterChange = await authorize(idep, IDEP.redirectUri, { ui_locales: 'sv', prompt: 'login' });
    const visits = rp.visited.length;
    await passwordStep(page, afterChange, sv, email, newPassword);
    await heading(page, sv('factors.email-link.name')).waitFor();
    expect(new URL(page.url()).pathname).toMatch(/\/mfa\/email-link$/);
    expect(await page.getByRole('button', { name: sv('factors.email-link.send'), exact: true }).isVisible()).toBe(true);
    expect(rp.visited).toHaveLength(visits);
  });
  test('the waiting page submits nothing of its own once the user has sent the code (a late poll answer is ignored)', async () => {
    const email = 'user5@scb.example';
    const user = await newUser(email);
    const { page, rp } = await openBrowser({ locale: 'sv-SE' });
    const { start, code } = await idepToWaitingPage(page, email, 'us…r5@sc…le');
    const continues: string[] = [];
    page.on('request', (r) => {
      if (r.method() === 'POST' && r.url().endsWith('/mfa/continue')) continues.push(r.url());
    });

    // A slow network: the status poll in flight when the user sends the code is answered just
    // after, and with "verified" (as when the link was opened in another tab at that very moment).
    await page.evaluate(() => {
      const w = window as unknown as { fetch: typeof fetch; pollsInFlight: number };
      const realFetch = w.fetch.bind(window);
      const answers: (() => void)[] = [];
      w.pollsInFlight = 0;
      w.fetch = (input, init) => {
        if (!(input instanceof Request ? input.url : input.toString()).includes('/status?')) return realFetch(input, init);
        w.pollsInFlight++;
        const verified = new Response('{"status":"verified"}', { headers: { 'Content-Type': 'application/json' } });
        return new Promise<Response>((resolve) => answers.push(() => resolve(verified)));
      };
      document.addEventListener('submit', () => setTimeout(() => answers.splice(0).forEach((answer) => answer()), 50));
    });
    await page.waitForFunction(() => (window as unknown as { pollsInFlight: number }).pollsInFlight > 0);

    // The code from the mail, sent with Enter; its request is held on the way (while a navigation
    // is pending, DevTools cannot talk to the page, so everything above was arranged beforehand).
    const verify = await holdRequests(page, '*/verify');
    await page.getByText(sv('link.type_code_instead'), { exact: true }).click();
    await page.getByLabel(sv('mfa.code_label'), { exact: true }).fill(code);
    await page.keyboard.press('Enter');
    await verify.held();
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(continues).toEqual([]);

    await verify.release();
    const callback = await rp.arrival();
    expect(continues).toEqual([]);
    await expectSignedIn(idep, callback, start, user.id, MFA);
  });
});
