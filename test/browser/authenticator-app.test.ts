// Nyckel Authenticator's app in a Chromium with a fake camera (a Y4M file of a QR code written by the
// test): scanning the sign-in page's QR code with the bundled decoder (BarcodeDetector removed, as on
// iOS Safari and Firefox), the PIN before the code, the code signing in; the service worker sending a
// rotated push subscription; the screens on a 390 px phone in Swedish, by keyboard, axe-clean.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import type { BrowserContext, Page } from 'playwright-core';
import { decodeEntities, textOf } from '../support/browser.ts';
import { Chromium, seriousAxeViolations } from '../support/chromium.ts';
import { FakeCamera } from '../support/fake-camera.ts';
import type { FakePushService } from '../support/fake-push-service.ts';
import { startTestNyckel, type TestNyckel } from '../support/nyckel.ts';
import { PIN, pushFlows } from '../push/helpers.ts';

const PHONE = { width: 390, height: 844 };
let nyckel: TestNyckel;
let chromium: Chromium;
const camera = new FakeCamera();

beforeAll(async () => {
  [nyckel, chromium] = await Promise.all([startTestNyckel(), Chromium.launch({ args: camera.chromiumArgs })]);
});
afterEach(() => chromium?.closeContexts());
afterAll(async () => {
  await chromium?.close();
  await nyckel?.stop();
  camera.remove();
});

// No push service here: the phones register without a subscription (Chromium's own attempt fails).
const flows = pushFlows(() => ({ nyckel, push: undefined as unknown as FakePushService }));

/** A new user adds a phone on the account pages; the app in Chromium registers it (PIN only) and the account page confirms it. */
async function userWithAppPhone(locale = 'en-GB'): Promise<{ email: string; userId: string; context: BrowserContext; phone: Page }> {
  const { email, user } = await flows.newUser('app');
  const { browser, page, link } = await flows.startAddingPhone(email);
  const context = await chromium.newContext({ locale, viewport: PHONE });
  // As on iOS Safari and Firefox: no BarcodeDetector, so the bundled decoder is what reads the QR code.
  await context.addInitScript(() => {
    delete (window as { BarcodeDetector?: unknown }).BarcodeDetector;
  });
  const phone = await context.newPage();
  await phone.goto(link);
  // The name was asked on the account page: the app asks only for the PIN.
  await phone.locator('#enrol-pin').waitFor();
  expect(await phone.locator('#enrol input:not([type="password"])').count()).toBe(0);
  await phone.locator('#enrol-pin').fill(PIN);
  await phone.locator('#enrol-pin2').fill(PIN);
  await phone.locator('#enrol-submit').click();
  await phone.locator('#device-name', { hasText: 'My work phone' }).waitFor();
  expect(JSON.parse((await browser.request(`${page.url}/status`)).html)).toEqual({ status: 'registered' });
  const done = await browser.submit(await browser.go(page.url), '/done', {});
  expect(textOf(done.html)).toContain('Save your recovery codes');
  return { email, userId: user.id, context, phone };
}

const pageWidth = (page: Page) => page.evaluate(() => document.documentElement.scrollWidth);

describe('Nyckel Authenticator: camera, service worker, screens', () => {
  test('the offline QR code is scanned with the bundled decoder; the PIN is asked; the code signs in', async () => {
    const { email, phone } = await userWithAppPhone();
    const flow = await flows.passwordStep(email);
    const page = await flow.browser.go(flows.url(`/interaction/${flow.uid}/mfa/app-qr`));
    const text = decodeEntities(/<code id="app-qr-text">([^<]+)<\/code>/.exec(page.html)![1]);
    camera.show(text);

    await phone.getByRole('link', { name: 'QR code', exact: true }).click();
    await phone.getByRole('button', { name: 'Scan a QR code', exact: true }).click();
    await phone.waitForFunction(() => (document.getElementById('qr-text') as HTMLInputElement).value !== '', undefined, { timeout: 15_000 });
    expect(await phone.locator('#qr-text').inputValue()).toBe(text);
    expect(await phone.evaluate(() => ({ native: 'BarcodeDetector' in window, jsQR: typeof (window as { jsQR?: unknown }).jsQR }))).toEqual({
      native: false,
      jsQR: 'function',
    });
    // The camera is off again; no code before the PIN, which has the focus.
    expect(await phone.locator('#qr-video').isHidden()).toBe(true);
    expect(await phone.locator('#status').textContent()).toBe('QR code read. Type your PIN to see the code.');
    expect(await phone.locator('#qr-result').isHidden()).toBe(true);
    expect(await phone.evaluate(() => document.activeElement?.id)).toBe('qr-pin');
    await phone.keyboard.type(PIN);
    await phone.keyboard.press('Enter');
    await phone.locator('#qr-result').waitFor();
    const code = (await phone.locator('#qr-code').textContent())!.replace(/\s/g, '');
    expect(code).toMatch(/^\d{8}$/);
    expect(await phone.locator('#qr-pin').inputValue()).toBe('');
    expect(await pageWidth(phone)).toBeLessThanOrEqual(PHONE.width);
    expect(await seriousAxeViolations(phone)).toEqual([]);

    const signedIn = await flow.browser.submit(page, '/verify', { code });
    expect((await flows.tokensFrom(flow.config, flow.start, signedIn)).claims()).toMatchObject({ amr: ['pwd', 'otp', 'swk', 'mfa'] });
  });

  test('pushsubscriptionchange: the service worker sends the new subscription, signed with the device key, and Nyckel keeps it', async () => {
    const { userId, context, phone } = await userWithAppPhone();
    await phone.evaluate(() => navigator.serviceWorker.ready.then(() => undefined));
    const worker = context.serviceWorkers()[0] ?? (await context.waitForEvent('serviceworker'));
    const subscription = {
      endpoint: `https://push.example.test/rotated/${crypto.randomUUID()}`,
      keys: { p256dh: crypto.randomBytes(65).toString('base64url'), auth: crypto.randomBytes(16).toString('base64url') },
    };
    // The event as the browser fires it when the push service rotates the subscription.
    await worker.evaluate((sub) => {
      const scope = globalThis as unknown as { ExtendableEvent: typeof Event; dispatchEvent(event: Event): boolean };
      const event = new scope.ExtendableEvent('pushsubscriptionchange');
      Object.defineProperty(event, 'newSubscription', { value: { toJSON: () => sub } });
      try {
        scope.dispatchEvent(event);
      } catch {
        // waitUntil refuses a synthetic event; the handler has started all the same.
      }
    }, subscription);
    const stored = async () =>
      ((await nyckel.db.prisma.factorEnrolment.findFirstOrThrow({ where: { userId, type: 'push' } })).data as { subscription: unknown }).subscription;
    for (let i = 0; i < 50 && (await stored()) === null; i++) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await stored()).toEqual(subscription);
  });

  test('on a 390 px phone in Swedish: three screens by keyboard, no overflow, axe-clean; the picked number looks picked; answers are clear states', async () => {
    const { email, phone } = await userWithAppPhone('sv-SE');
    const tabs = phone.getByRole('navigation', { name: 'Appens vyer' }).getByRole('link');
    expect(await tabs.allTextContents()).toEqual(['Begäranden', 'QR-kod', 'Byt telefon']);
    expect(await phone.locator('#tab-requests').getAttribute('aria-current')).toBe('page');

    for (const [tab, heading] of [
      ['#tab-qr', 'Logga in med QR-kod (inget nätverk behövs)'],
      ['#tab-move', 'Flytta till en ny telefon'],
      ['#tab-requests', 'Inloggningsbegäranden'],
    ]) {
      await phone.locator(tab).focus();
      await phone.keyboard.press('Enter');
      await phone.waitForFunction((name) => document.activeElement?.textContent === name, heading);
      expect(await phone.locator(tab).getAttribute('aria-current')).toBe('page');
      expect(await phone.locator('.screen:not([hidden])').count()).toBe(1);
      expect(await pageWidth(phone)).toBeLessThanOrEqual(PHONE.width);
      expect(await seriousAxeViolations(phone)).toEqual([]);
    }

    const push = await flows.pushSignIn(email);
    await phone.getByRole('button', { name: 'Sök efter begäranden', exact: true }).click();
    const request = phone.locator(`#request-${push.challengeId}`);
    await request.waitFor();
    const picked = request.locator(`button.number[data-number="${push.number}"]`);
    await picked.click();
    expect(await picked.getAttribute('aria-pressed')).toBe('true');
    expect(await request.locator('button.number[aria-pressed="false"]').count()).toBe(2);
    const background = (selector: string) =>
      request
        .locator(selector)
        .first()
        .evaluate((el) => getComputedStyle(el).backgroundColor);
    expect(await background('button.number[aria-pressed="true"]')).not.toBe(await background('button.number[aria-pressed="false"]'));
    expect(await request.locator('.request-picked').textContent()).toBe(`Du valde ${push.number}.`);
    expect(await pageWidth(phone)).toBeLessThanOrEqual(PHONE.width);
    expect(await seriousAxeViolations(phone)).toEqual([]);

    await request.getByLabel('Din PIN-kod').fill('1397');
    await request.getByRole('button', { name: 'Godkänn', exact: true }).click();
    await request.locator('.request-result.alert', { hasText: 'Fel PIN-kod.' }).waitFor();
    await request.getByRole('button', { name: 'Neka', exact: true }).click();
    await request.locator('.request-result.notice', { hasText: 'Nekat.' }).waitFor();
    expect(await request.locator('button:enabled').count()).toBe(0);
    expect(await seriousAxeViolations(phone)).toEqual([]);
  });

  test('every string of the app is in English, Swedish and Danish', () => {
    const source = fs.readFileSync(new URL('../../interactions/authenticator/strings.js', import.meta.url), 'utf8');
    const keys = (lang: string) => {
      const block = new RegExp(`\\n  ${lang}: \\{([\\s\\S]*?)\\n  \\}`).exec(source)![1];
      return [...block.matchAll(/^ {4}(\w+):/gm)].map((m) => m[1]).sort();
    };
    expect(keys('en').length).toBeGreaterThan(50);
    expect(keys('sv')).toEqual(keys('en'));
    expect(keys('da')).toEqual(keys('en'));
  });
});
