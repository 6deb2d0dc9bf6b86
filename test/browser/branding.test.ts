import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import type { Page } from 'playwright-core';
import { parseClientsFile } from '../../src/clients/clients-file.ts';
import { brandEnv, brandFiles, withBrandedClient } from '../support/brand-files.ts';
import { Chromium, seriousAxeViolations } from '../support/chromium.ts';
import { startTestNyckel, testClientsYaml, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, startAuthorization } from '../support/relying-party.ts';

const PHONE = { width: 390, height: 844 };
let nyckel: TestNyckel;
let chromium: Chromium;
let files: Awaited<ReturnType<typeof brandFiles>>;

beforeAll(async () => {
  files = await brandFiles();
  [nyckel, chromium] = await Promise.all([
    startTestNyckel({ clients: parseClientsFile(withBrandedClient(testClientsYaml, files), 'clients.yaml'), env: brandEnv(files) }),
    Chromium.launch(),
  ]);
});
afterEach(() => chromium?.closeContexts());
afterAll(async () => {
  await chromium?.close();
  await nyckel?.stop();
  files?.remove();
});

/** A phone-sized page that records what the CSP refused (it reports each refusal on the console). */
async function phonePage(): Promise<{ page: Page; refused: string[] }> {
  const page = await (await chromium.newContext({ viewport: PHONE })).newPage();
  const refused: string[] = [];
  page.on('console', (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) refused.push(message.text());
  });
  return { page, refused };
}

const pageWidth = (page: Page) => page.evaluate(() => document.documentElement.scrollWidth);
const loaded = (page: Page, selector: string) => page.locator(selector).evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0);

describe('branded hosted pages in Chromium', () => {
  test("a client's sign-in page: both logos load under the CSP, the colours apply, axe-clean, no overflow at 390 px", async () => {
    const { page, refused } = await phonePage();
    const config = await relyingParty(nyckel.url, 'branded');
    const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/branded-cb', scope: 'openid email', ui_locales: 'sv' });
    await page.goto(start.url.toString());
    await page.waitForLoadState('load');

    expect(await loaded(page, 'img.brand-logo')).toBe(true);
    expect(await loaded(page, 'img.client-logo')).toBe(true);
    expect(await page.locator('.brand-name').textContent()).toBe('IDEP.WEB');
    expect(await page.locator('.client-name').textContent()).toContain('Statistikportalen');
    expect(await page.title()).toMatch(/ · IDEP\.WEB$/);
    // The primary colour on the button, the accent above the card: custom properties from /assets/brand-<hash>.css.
    expect(
      await page
        .locator('button[type=submit]')
        .first()
        .evaluate((el) => getComputedStyle(el).backgroundColor),
    ).toBe('rgb(0, 102, 170)');
    expect(await page.locator('main.card').evaluate((el) => getComputedStyle(el).borderTopColor)).toBe('rgb(255, 204, 0)');
    expect(refused).toEqual([]);
    expect(await pageWidth(page)).toBeLessThanOrEqual(PHONE.width);
    expect(await seriousAxeViolations(page)).toEqual([]);
  });

  test("an error page with the installation's support contact: axe-clean, no overflow at 390 px", async () => {
    const { page, refused } = await phonePage();
    const response = await page.goto(`${nyckel.url}/no-such-page`);
    expect(response?.status()).toBe(404);
    expect(await loaded(page, 'img.brand-logo')).toBe(true);
    expect(await page.locator('.support a[href^="mailto:"]').textContent()).toBe('support@idep.example');
    expect(refused).toEqual([]);
    expect(await pageWidth(page)).toBeLessThanOrEqual(PHONE.width);
    expect(await seriousAxeViolations(page)).toEqual([]);
  });
});
