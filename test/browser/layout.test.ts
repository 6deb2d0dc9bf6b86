import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import type { Page } from 'playwright-core';
import { Chromium } from '../support/chromium.ts';
import { startTestNyckel, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, startAuthorization } from '../support/relying-party.ts';

const PHONE = { width: 390, height: 844 };
let nyckel: TestNyckel;
let chromium: Chromium;

beforeAll(async () => {
  [nyckel, chromium] = await Promise.all([startTestNyckel(), Chromium.launch()]);
});
afterEach(() => chromium?.closeContexts());
afterAll(async () => {
  await chromium?.close();
  await nyckel?.stop();
});

const pageWidth = (page: Page) => page.evaluate(() => document.documentElement.scrollWidth);

describe('layout on a phone (390 px)', () => {
  test('the login page, with the language switcher, has no horizontal overflow', async () => {
    const page = await (await chromium.newContext({ viewport: PHONE })).newPage();
    const config = await relyingParty(nyckel.url, 'spa');
    const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/spa-cb', ui_locales: 'da' });
    await page.goto(start.url.toString());
    expect(await pageWidth(page)).toBeLessThanOrEqual(PHONE.width);
  });

  test("the authenticator's move-phone link wraps instead of widening the page", async () => {
    const page = await (await chromium.newContext({ viewport: PHONE })).newPage();
    await page.goto(`${nyckel.url}/authenticator/`);
    await page.evaluate(() => {
      const link = document.getElementById('move-link')!;
      link.textContent = `https://login.example.se/authenticator/#move=${'x'.repeat(120)}`;
      document.getElementById('move-result')!.hidden = false;
      for (let node: HTMLElement | null = link; node; node = node.parentElement) node.hidden = false;
    });
    expect(await pageWidth(page)).toBeLessThanOrEqual(PHONE.width);
  });
});
