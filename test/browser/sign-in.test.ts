// The hosted sign-in pages in a real Chromium: openid-client builds the authorization request and
// redeems the code, the browser does everything a person would (labels, buttons, keyboard).
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import type { BrowserContextOptions, Page, Response } from 'playwright-core';
import { messages as messagesOf } from '../support/messages.ts';
import { Chromium, expectNoSeriousAxeViolations, interceptRelyingParty, seriousAxeViolations } from '../support/chromium.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, startAuthorization, type AuthorizationStart } from '../support/relying-party.ts';

type Msg = ReturnType<typeof messagesOf>;
const sv = messagesOf('sv');
const da = messagesOf('da');
const en = messagesOf('en');

const WEB = { id: 'web', name: 'Statistics portal', secret: 'web-secret-web-secret-0001', redirectUri: 'http://localhost:4000/cb' };
const SPA = { id: 'spa', name: 'Care portal', redirectUri: 'http://localhost:4000/spa-cb' };

let nyckel: TestNyckel;
let chromium: Chromium;
let web: oidc.Configuration;
let spa: oidc.Configuration;
let userId: string;
const email = 'karin.lindqvist@scb.example';

beforeAll(async () => {
  [nyckel, chromium] = await Promise.all([startTestNyckel(), Chromium.launch()]);
  userId = (await nyckel.accounts.create({ email, password: TEST_PASSWORD, name: 'Karin Lindqvist' })).id;
  web = await relyingParty(nyckel.url, WEB.id, WEB.secret);
  spa = await relyingParty(nyckel.url, SPA.id);
});
afterEach(() => chromium?.closeContexts());
afterAll(async () => {
  await chromium?.close();
  await nyckel?.stop();
});

/** A fresh browser context (no cookies) whose visits to the relying parties are intercepted. */
async function openBrowser(options: BrowserContextOptions = {}) {
  const context = await chromium.newContext(options);
  const page = await context.newPage();
  const rp = await interceptRelyingParty(page);
  return { context, page, rp };
}

async function authorize(config: oidc.Configuration, redirectUri: string, params: Record<string, string> = {}) {
  return startAuthorization(config, { redirect_uri: redirectUri, scope: 'openid profile email', ...params });
}

/** Opens the authorization URL and checks that it lands on the hosted login page. */
async function openLogin(page: Page, start: AuthorizationStart): Promise<Response> {
  const response = await page.goto(start.url.toString());
  expect(response?.status()).toBe(200);
  expect(new URL(page.url()).pathname).toMatch(/^\/interaction\/[\w-]+$/);
  return response!;
}

async function fillAndSubmitLogin(page: Page, messages: Msg, password = TEST_PASSWORD) {
  await page.getByLabel(messages('login.name_label.username_or_email'), { exact: true }).fill(email);
  await page.getByLabel(messages('login.password_label'), { exact: true }).fill(password);
  await page.getByRole('button', { name: messages('login.submit'), exact: true }).click();
}

/** Redeems the code with openid-client, which checks iss, state, nonce and PKCE, and checks the ID token. */
async function expectPasswordSignIn(config: oidc.Configuration, callback: URL, start: AuthorizationStart) {
  expect(callback.searchParams.get('iss')).toBe(nyckel.url);
  const tokens = await oidc.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: start.verifier,
    expectedState: start.state,
    expectedNonce: start.nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims()!;
  expect(claims.sub).toBe(userId);
  expect(claims.acr).toBe('urn:nyckel:acr:password');
  expect(claims.amr).toEqual(['pwd']);
  return tokens;
}

async function expectAccessDenied(config: oidc.Configuration, callback: URL, start: AuthorizationStart) {
  expect(callback.searchParams.get('error')).toBe('access_denied');
  expect(callback.searchParams.get('code')).toBeNull();
  await expect(
    oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: start.verifier, expectedState: start.state, expectedNonce: start.nonce }),
  ).rejects.toMatchObject({ error: 'access_denied' });
}

const htmlLang = (page: Page) => page.locator('html').getAttribute('lang');
const focusedId = (page: Page) => page.evaluate(() => document.activeElement?.id ?? null);

describe('hosted sign-in pages in Chromium', () => {
  test('English (ui_locales=en): sign in and consent for a confidential client, then tokens', async () => {
    const { page, rp } = await openBrowser();
    const start = await authorize(web, WEB.redirectUri, { ui_locales: 'en' });
    await openLogin(page, start);

    expect(await htmlLang(page)).toBe('en');
    expect(await page.title()).toBe(`${en('login.title')} · Nyckel`);
    await page.getByRole('heading', { level: 1, name: en('login.title') }).waitFor();
    await page.getByText(en('common.signing_in_to', { client: WEB.name })).waitFor();
    await expectNoSeriousAxeViolations(page);
    await page.emulateMedia({ colorScheme: 'dark' });
    await expectNoSeriousAxeViolations(page);
    await page.emulateMedia({ colorScheme: 'light' });

    await fillAndSubmitLogin(page, en);
    await page.getByRole('heading', { level: 1, name: en('consent.title') }).waitFor();
    expect(new URL(page.url()).pathname).toMatch(/^\/interaction\//);
    expect(await page.getByText(en('consent.intro', { client: WEB.name })).isVisible()).toBe(true);
    expect(await page.getByRole('listitem').allTextContents()).toEqual([en('consent.scopes.openid'), en('consent.scopes.profile'), en('consent.scopes.email')]);
    await expectNoSeriousAxeViolations(page);

    await page.getByRole('button', { name: en('consent.allow'), exact: true }).click();
    const callback = await rp.arrival();
    expect(callback.origin + callback.pathname).toBe(WEB.redirectUri);
    expect(rp.visited).toHaveLength(1);
    const tokens = await expectPasswordSignIn(web, callback, start);
    const userinfo = await oidc.fetchUserInfo(web, tokens.access_token, userId);
    expect(userinfo).toMatchObject({ email, name: 'Karin Lindqvist' });
  });

  test('the axe check sees the real page: breaking a label on the login page is reported', async () => {
    const { page } = await openBrowser();
    await openLogin(page, await authorize(spa, SPA.redirectUri, { ui_locales: 'en' }));
    await page.locator('label[for=username]').evaluate((label) => label.removeAttribute('for'));
    const violations = await seriousAxeViolations(page);
    expect(violations.map((v) => v.id)).toContain('label');
    expect(violations.find((v) => v.id === 'label')?.nodes.map((n) => n.target.join(' '))).toEqual(['#username']);
  });

  test('Swedish (ui_locales=sv): every text of the login and consent pages is Swedish', async () => {
    const { page, rp } = await openBrowser({ locale: 'en-GB' });
    const start = await authorize(web, WEB.redirectUri, { ui_locales: 'sv', prompt: 'consent' });
    await openLogin(page, start);

    expect(await htmlLang(page)).toBe('sv');
    expect(await page.title()).toBe('Logga in · Nyckel');
    await page.getByRole('heading', { level: 1, name: 'Logga in' }).waitFor();
    expect(await page.getByText(sv('login.intro', { client: WEB.name })).isVisible()).toBe(true);
    expect(await page.getByText(sv('common.signing_in_to', { client: WEB.name })).isVisible()).toBe(true);
    expect(await page.getByLabel('Användarnamn eller e-post', { exact: true }).getAttribute('autocomplete')).toBe('username');
    expect(await page.getByLabel('Lösenord', { exact: true }).getAttribute('type')).toBe('password');
    expect(await page.getByRole('button', { name: 'Logga in', exact: true }).isVisible()).toBe(true);
    expect(await page.getByRole('button', { name: `Avbryt och gå tillbaka till ${WEB.name}`, exact: true }).isVisible()).toBe(true);

    await fillAndSubmitLogin(page, sv);
    await page.getByRole('heading', { level: 1, name: 'Ge åtkomst' }).waitFor();
    expect(await htmlLang(page)).toBe('sv');
    expect(await page.getByRole('listitem').allTextContents()).toEqual(['Veta vem du är', 'Se ditt namn och ditt språk', 'Se din e-postadress']);
    expect(await page.getByRole('button', { name: 'Neka', exact: true }).isVisible()).toBe(true);
    await page.getByRole('button', { name: 'Tillåt', exact: true }).click();

    await expectPasswordSignIn(web, await rp.arrival(), start);
  });

  test('Danish from Accept-Language (no ui_locales); a first-party client skips consent', async () => {
    const { page, rp } = await openBrowser({ locale: 'da-DK' });
    const interactionPages: string[] = [];
    page.on('response', (response) => {
      if (new URL(response.url()).pathname.startsWith('/interaction/') && response.status() === 200) interactionPages.push(response.url());
    });
    const start = await authorize(spa, SPA.redirectUri);
    expect(start.url.searchParams.has('ui_locales')).toBe(false);
    await openLogin(page, start);

    expect(await htmlLang(page)).toBe('da');
    await page.getByRole('heading', { level: 1, name: da('login.title') }).waitFor();
    expect(await page.getByText(da('login.intro', { client: SPA.name })).isVisible()).toBe(true);
    expect(await page.getByRole('button', { name: da('login.cancel', { client: SPA.name }), exact: true }).isVisible()).toBe(true);

    await fillAndSubmitLogin(page, da);
    const callback = await rp.arrival();
    expect(callback.origin + callback.pathname).toBe(SPA.redirectUri);
    // Only the login page was shown: no consent page for the first-party client.
    expect(interactionPages).toHaveLength(1);
    await expectPasswordSignIn(spa, callback, start);
  });

  test('a wrong password shows the localised error in an alert and keeps the typed email', async () => {
    const { page, rp } = await openBrowser();
    const start = await authorize(spa, SPA.redirectUri, { ui_locales: 'sv' });
    await openLogin(page, start);

    const failed = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/login'));
    await fillAndSubmitLogin(page, sv, 'not the right password at all');
    expect((await failed).status()).toBe(401);

    const alert = page.getByRole('alert');
    expect((await alert.textContent())?.trim()).toBe(sv('login.invalid', { name: sv('login.name_word.username_or_email') }));
    expect(await htmlLang(page)).toBe('sv');
    const emailField = page.getByLabel('Användarnamn eller e-post', { exact: true });
    const passwordField = page.getByLabel('Lösenord', { exact: true });
    expect(await emailField.inputValue()).toBe(email);
    expect(await passwordField.inputValue()).toBe('');
    // The fields point at the message, and the cursor waits in the password field.
    expect(await passwordField.getAttribute('aria-invalid')).toBe('true');
    expect(await passwordField.getAttribute('aria-describedby')).toBe(await alert.getAttribute('id'));
    expect(await focusedId(page)).toBe('password');
    await expectNoSeriousAxeViolations(page);

    // Only the password needs typing again.
    await passwordField.fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Logga in', exact: true }).click();
    await expectPasswordSignIn(spa, await rp.arrival(), start);
  });

  test('cancel ("Avbryt och gå tillbaka till …") returns access_denied to the client', async () => {
    const { page, rp } = await openBrowser();
    const start = await authorize(web, WEB.redirectUri, { ui_locales: 'sv' });
    await openLogin(page, start);
    await page.getByRole('button', { name: `Avbryt och gå tillbaka till ${WEB.name}`, exact: true }).click();
    const callback = await rp.arrival();
    expect(callback.origin + callback.pathname).toBe(WEB.redirectUri);
    await expectAccessDenied(web, callback, start);
  });

  test('Deny on the consent page (Danish) returns access_denied to the client', async () => {
    const { page, rp } = await openBrowser({ locale: 'da-DK' });
    const start = await authorize(web, WEB.redirectUri, { prompt: 'consent' });
    await openLogin(page, start);
    await fillAndSubmitLogin(page, da);
    await page.getByRole('heading', { level: 1, name: da('consent.title') }).waitFor();
    expect(await htmlLang(page)).toBe('da');
    await page.getByRole('button', { name: da('consent.deny'), exact: true }).click();
    const callback = await rp.arrival();
    expect(callback.origin + callback.pathname).toBe(WEB.redirectUri);
    await expectAccessDenied(web, callback, start);
  });

  test('keyboard only: focus starts on the name field, Tab reaches the password, Enter submits', async () => {
    const { page, rp } = await openBrowser();
    const start = await authorize(spa, SPA.redirectUri, { ui_locales: 'en' });
    await openLogin(page, start);

    expect(await focusedId(page)).toBe('username');
    // Shift+Tab goes back through the language switcher to the skip link, which then shows on screen;
    // Tab goes forward again to the name field.
    const isFocused = (name: string) => page.getByRole('link', { name, exact: true }).evaluate((el) => el === document.activeElement);
    await page.keyboard.press('Shift+Tab');
    expect(await isFocused('English')).toBe(true);
    for (let i = 0; i < 3; i++) await page.keyboard.press('Shift+Tab');
    const skipLink = page.getByRole('link', { name: en('common.skip_to_content') });
    expect(await skipLink.evaluate((el) => el === document.activeElement)).toBe(true);
    const box = await skipLink.boundingBox();
    expect(box && box.x >= 0 && box.y >= 0 && box.width > 0).toBe(true);
    for (let i = 0; i < 4; i++) await page.keyboard.press('Tab');
    expect(await focusedId(page)).toBe('username');

    await page.keyboard.type(email);
    await page.keyboard.press('Tab');
    expect(await focusedId(page)).toBe('password');
    // The focused field has a visible focus indicator.
    expect(await page.locator('#password').evaluate((el) => getComputedStyle(el).outlineStyle)).toBe('solid');
    await page.keyboard.type(TEST_PASSWORD);
    await page.keyboard.press('Enter');

    await expectPasswordSignIn(spa, await rp.arrival(), start);
  });

  test('an interaction page opened again after it finished says, localised, that the person is already signed in', async () => {
    const { page, rp } = await openBrowser({ locale: 'sv-SE' });
    const start = await authorize(spa, SPA.redirectUri);
    await openLogin(page, start);
    const interactionUrl = page.url();
    await fillAndSubmitLogin(page, sv);
    await expectPasswordSignIn(spa, await rp.arrival(), start);

    const response = await page.goto(interactionUrl);
    expect(response?.status()).toBe(200);
    expect(await htmlLang(page)).toBe('sv');
    await page.getByRole('heading', { level: 1, name: sv('ended.title') }).waitFor();
    expect((await page.getByRole('alert').textContent())?.trim()).toBe(sv('ended.message', { client: SPA.name }));
    expect(await page.getByRole('link', { name: sv('common.back_to_client', { client: SPA.name }) }).getAttribute('href')).toBe('http://localhost:4000/');
    expect(await page.content()).not.toMatch(/SessionNotFound|interaction session id cookie not found/i);
    await expectNoSeriousAxeViolations(page);
  });

  test('reloading the login page with the cookies cleared shows the localised "expired" page (400)', async () => {
    const { context, page } = await openBrowser({ locale: 'da-DK' });
    const start = await authorize(web, WEB.redirectUri, { ui_locales: 'da' });
    await openLogin(page, start);
    await context.clearCookies();

    const response = await page.reload();
    expect(response?.status()).toBe(400);
    expect(await htmlLang(page)).toBe('da');
    await page.getByRole('heading', { level: 1, name: da('errors.title') }).waitFor();
    expect((await page.getByRole('alert').textContent())?.trim()).toBe(da('errors.session_expired'));
    expect(await page.content()).not.toMatch(/SessionNotFound|interaction session id cookie not found/i);
    await expectNoSeriousAxeViolations(page);
  });

  test('submitting the login form after the cookies were cleared shows the "expired" page, not a crash', async () => {
    const { context, page, rp } = await openBrowser({ locale: 'en-GB' });
    const start = await authorize(spa, SPA.redirectUri, { ui_locales: 'en' });
    await openLogin(page, start);
    await context.clearCookies();

    const posted = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/login'));
    await fillAndSubmitLogin(page, en);
    expect((await posted).status()).toBe(400);
    await page.getByRole('heading', { level: 1, name: en('errors.title') }).waitFor();
    expect((await page.getByRole('alert').textContent())?.trim()).toBe(en('errors.session_expired'));
    expect(rp.visited).toEqual([]);
  });
});
