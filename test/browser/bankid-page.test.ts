// The BankID page by BankID's guidelines, in a real Chromium: on a computer the animated QR code is the
// default, on a phone "BankID on this device" (the app opened by its universal link); no status before
// the person chooses; the two ways are equal buttons on one line each on a 390 px phone; BankID's mark
// is shown when the installation supplies it (NYCKEL_BANKID_LOGO_FILE), served by Nyckel itself.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, jest, test } from '@jest/globals';
import type { BrowserContextOptions, Page } from 'playwright-core';
import { bindPersonalNumber } from '../../src/factors/bankid/binding.ts';
import { makeBankIdCertificates, personalNumberFor, startFakeBankId, type FakeBankId } from '../support/bankid-fake.ts';
import { Chromium, seriousAxeViolations } from '../support/chromium.ts';
import { messages } from '../support/messages.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, startAuthorization } from '../support/relying-party.ts';

jest.setTimeout(120_000);

const IPHONE: BrowserContextOptions = {
  userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1',
  viewport: { width: 390, height: 844 },
  isMobile: true,
  hasTouch: true,
};
/** A stand-in for BankID's mark (Nyckel's tests do not carry BankID's trademark). */
const MARK =
  '<?xml version="1.0" encoding="UTF-8"?>\n<!-- a test mark -->\n' +
  '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="48" viewBox="0 0 120 48"><rect width="120" height="48" fill="#183e4f"/></svg>\n';

let nyckel: TestNyckel;
let fake: FakeBankId;
let chromium: Chromium;
let logoFile: string;
let counter = 0;

beforeAll(async () => {
  logoFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nyckel-bankid-mark-')), 'mark.svg');
  fs.writeFileSync(logoFile, MARK);
  fake = await startFakeBankId(makeBankIdCertificates());
  [nyckel, chromium] = await Promise.all([startTestNyckel({ env: { ...fake.env(), NYCKEL_BANKID_LOGO_FILE: logoFile } }), Chromium.launch()]);
});
afterEach(() => chromium?.closeContexts());
afterAll(async () => {
  await chromium?.close();
  await nyckel?.stop();
  await fake?.close();
});

/** A user with a bound BankID (and nothing else), signed in with the password: straight to the BankID page. */
async function toBankIdPage(page: Page, locale: 'sv' | 'da' | 'en') {
  const msg = messages(locale);
  const email = `bankid-page${++counter}@kura.example`;
  const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale });
  await bindPersonalNumber(nyckel.db.prisma, nyckel.box, user.id, personalNumberFor('19800303', 200 + counter));
  const config = await relyingParty(nyckel.url, 'eid');
  const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/eid-cb', scope: 'openid', ui_locales: locale });
  await page.goto(start.url.toString());
  await page.getByLabel(msg('login.name_label.username_or_email'), { exact: true }).fill(email);
  await page.getByLabel(msg('login.password_label'), { exact: true }).fill(TEST_PASSWORD);
  await page.getByRole('button', { name: msg('login.submit'), exact: true }).click();
  await page.getByRole('heading', { level: 1, name: msg('factors.bankid.title'), exact: true }).waitFor();
  return msg;
}

/** The two ways as laid out: their order, widths and heights, and the one-line height of a button. */
const choiceBoxes = (page: Page) =>
  page.evaluate(() =>
    Array.from(document.querySelectorAll<HTMLElement>('#bankid-choices > a, #bankid-choices > button')).map((element) => {
      const box = element.getBoundingClientRect();
      const style = getComputedStyle(element);
      const lineHeight = parseFloat(style.lineHeight) || parseFloat(style.fontSize) * 1.2;
      const inner = box.height - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom) - parseFloat(style.borderTopWidth) * 2;
      return { id: element.id, width: box.width, lines: Math.round(inner / lineHeight), primary: element.classList.contains('primary') };
    }),
  );

describe('the BankID page by BankID’s guidelines', () => {
  test('on a computer the animated QR code is the default; no status before a choice; the mark is shown', async () => {
    const page = await (await chromium.newContext()).newPage();
    fake.state.nextScript = { hints: Array(30).fill('outstandingTransaction'), end: { failed: 'expiredTransaction' } };
    const msg = await toBankIdPage(page, 'sv');
    await page.locator('#bankid-qr').waitFor({ state: 'visible' });
    expect((await choiceBoxes(page)).map(({ id, primary }) => ({ id, primary }))).toEqual([
      { id: 'bankid-other', primary: true },
      { id: 'bankid-same', primary: false },
    ]);
    expect(await page.getByRole('link', { name: msg('factors.bankid.this_device'), exact: true }).getAttribute('href')).toMatch(
      /^bankid:\/\/\/\?autostarttoken=[0-9a-f-]{36}&redirect=null$/,
    );
    // Polled for three seconds: still no hint, though BankID answers "outstandingTransaction".
    await page.waitForTimeout(3000);
    expect(await page.locator('#bankid-message').textContent()).toBe('');
    for (const hint of ['outstandingTransaction', 'outstandingTransaction_qr']) {
      expect(await page.getByText(msg(`factors.bankid.hints.${hint}`), { exact: true }).count()).toBe(0);
    }
    // BankID's mark, served by Nyckel ('self'), drawn on white space of its own.
    const logo = page.locator('#bankid-logo');
    expect(await logo.getAttribute('src')).toBe('/assets/bankid-logo.svg');
    expect(await logo.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth)).toBe(120);
    expect(await seriousAxeViolations(page)).toEqual([]);

    // Choosing "BankID på den här enheten": now the status follows.
    await page.getByRole('link', { name: msg('factors.bankid.this_device'), exact: true }).click();
    await page.getByText(msg('factors.bankid.hints.outstandingTransaction'), { exact: true }).waitFor();
    expect(await page.locator('#bankid-qr').isVisible()).toBe(false);
  });

  test('on a phone (iPhone, 390 px) "BankID on this device" is the default, by its universal link; equal buttons on one line', async () => {
    const page = await (await chromium.newContext(IPHONE)).newPage();
    fake.state.nextScript = { hints: Array(30).fill('outstandingTransaction'), end: { failed: 'expiredTransaction' } };
    const msg = await toBankIdPage(page, 'sv');
    const same = page.getByRole('link', { name: msg('factors.bankid.this_device'), exact: true });
    await same.waitFor();
    expect(await same.getAttribute('href')).toMatch(/^https:\/\/app\.bankid\.com\/\?autostarttoken=[0-9a-f-]{36}&redirect=null$/);
    // The QR code waits until "Mobilt BankID på annan enhet" is chosen; no status before.
    expect(await page.locator('#bankid-qr').isVisible()).toBe(false);
    await page.waitForTimeout(3000);
    expect(await page.locator('#bankid-message').textContent()).toBe('');

    const boxes = await choiceBoxes(page);
    expect(boxes.map(({ id, primary }) => ({ id, primary }))).toEqual([
      { id: 'bankid-same', primary: true },
      { id: 'bankid-other', primary: false },
    ]);
    expect(boxes[0].width).toBeGreaterThan(200);
    expect(Math.abs(boxes[0].width - boxes[1].width)).toBeLessThan(1);
    expect(boxes.map(({ lines }) => lines)).toEqual([1, 1]);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    expect(await page.locator('#bankid-logo').isVisible()).toBe(true);
    expect(await seriousAxeViolations(page)).toEqual([]);

    await page.getByRole('button', { name: msg('factors.bankid.other_device'), exact: true }).click();
    await page.locator('#bankid-qr').waitFor({ state: 'visible' });
    await page.getByText(msg('factors.bankid.hints.outstandingTransaction_qr'), { exact: true }).waitFor();
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
  });

  test('an iPad that reports itself as a Mac (iPadOS): recognised by its touch screen, the app on this device first', async () => {
    const context = await chromium.newContext({
      userAgent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15',
      viewport: { width: 820, height: 1180 },
      hasTouch: true,
    });
    await context.addInitScript(() => Object.defineProperty(Navigator.prototype, 'maxTouchPoints', { get: () => 5 }));
    const page = await context.newPage();
    fake.state.nextScript = { hints: Array(30).fill('outstandingTransaction'), end: { failed: 'expiredTransaction' } };
    const msg = await toBankIdPage(page, 'sv');
    await page.locator('#bankid-other').waitFor();
    expect((await choiceBoxes(page)).map(({ id, primary }) => ({ id, primary }))).toEqual([
      { id: 'bankid-same', primary: true },
      { id: 'bankid-other', primary: false },
    ]);
    expect(await page.getByRole('link', { name: msg('factors.bankid.this_device'), exact: true }).getAttribute('href')).toMatch(
      /^https:\/\/app\.bankid\.com\/\?autostarttoken=[0-9a-f-]{36}&redirect=null$/,
    );
    expect(await page.locator('#bankid-qr').isVisible()).toBe(false);
  });

  test.each(['da', 'en'] as const)('the two ways stay one line each at 390 px in %s', async (locale) => {
    const page = await (await chromium.newContext(IPHONE)).newPage();
    fake.state.nextScript = { hints: Array(30).fill('outstandingTransaction'), end: { failed: 'expiredTransaction' } };
    await toBankIdPage(page, locale);
    await page.locator('#bankid-other').waitFor();
    const boxes = await choiceBoxes(page);
    expect(boxes.map(({ lines }) => lines)).toEqual([1, 1]);
    expect(Math.abs(boxes[0].width - boxes[1].width)).toBeLessThan(1);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
  });

  test('without the script: both ways on the page, no status, and the app link and QR code still there after the reload', async () => {
    const context = await chromium.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    fake.state.nextScript = { hints: Array(30).fill('outstandingTransaction'), end: { failed: 'expiredTransaction' } };
    const msg = await toBankIdPage(page, 'en');
    expect(await page.locator('#bankid-message').textContent()).toBe('');
    expect(await page.getByRole('link', { name: msg('factors.bankid.this_device'), exact: true }).isVisible()).toBe(true);
    expect(await page.locator('#bankid-qr').isVisible()).toBe(true);
    // The page refreshes itself (meta refresh): BankID's state is shown, the way to the app stays.
    await page.waitForURL(/\/challenge\//, { timeout: 10_000 });
    expect(await page.getByRole('link', { name: msg('factors.bankid.this_device'), exact: true }).getAttribute('href')).toMatch(/^bankid:\/\/\//);
    expect(await page.locator('#bankid-qr').isVisible()).toBe(true);
  });

  test('the mark is served by Nyckel as an SVG image, and only that name', async () => {
    const response = await fetch(`${nyckel.url}/assets/bankid-logo.svg`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('image/svg+xml');
    expect(response.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(await response.text()).toBe(MARK);
    expect((await fetch(`${nyckel.url}/assets/other-logo.svg`)).status).toBe(404);
  });
});
