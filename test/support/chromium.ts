import { expect } from '@jest/globals';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core';

/** Debian's Chromium; CI installs it with apt (there is no Playwright browser download here). */
export const CHROMIUM_PATH = '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];

/**
 * One real Chromium per suite, and a fresh context (cookies, storage, locale) per test:
 * call `newContext` in a test and `closeContexts` in afterEach.
 */
export class Chromium {
  private readonly contexts = new Set<BrowserContext>();

  private constructor(readonly browser: Browser) {}

  /** `args`: more command-line switches for this suite's Chromium (a fake camera, say). */
  static async launch(options: { args?: readonly string[] } = {}): Promise<Chromium> {
    if (!fs.existsSync(CHROMIUM_PATH)) {
      throw new Error(
        `Chromium is not installed at ${CHROMIUM_PATH}; the browser tests need it. ` +
          'Install it with `apt-get update && apt-get install -y chromium` (never `npx playwright install`).',
      );
    }
    const browser = await chromium.launch({
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: [...CHROMIUM_ARGS, ...(options.args ?? [])],
      timeout: 30_000,
    });
    return new Chromium(browser);
  }

  async newContext(options: BrowserContextOptions = {}): Promise<BrowserContext> {
    const context = await this.browser.newContext({ locale: 'en-GB', ...options });
    context.setDefaultTimeout(10_000);
    context.setDefaultNavigationTimeout(15_000);
    this.contexts.add(context);
    context.once('close', () => this.contexts.delete(context));
    return context;
  }

  async closeContexts(): Promise<void> {
    await Promise.all([...this.contexts].map((context) => context.close()));
    this.contexts.clear();
  }

  async close(): Promise<void> {
    await this.closeContexts();
    await this.browser.close();
  }
}

const relyingPartyPage =
  '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Relying party</title><link rel="icon" href="data:,"></head>' +
  '<body><main><h1>Back at the app</h1></main></body></html>';

/**
 * Stands in for relying parties at `origin` (nothing listens there): every request `page` makes to
 * it is answered with a small page, and its URL recorded.
 *
 * Not `context.route`: Playwright routes only the first request of a redirect chain and lets the
 * later hops through unrouted, and the way back to a relying party is always such a hop (a 303
 * from /auth/:uid). The DevTools protocol's Fetch domain pauses every hop, so it is used directly.
 */
export async function interceptRelyingParty(page: Page, origin = 'http://localhost:4000') {
  const visited: URL[] = [];
  const cdp = await page.context().newCDPSession(page);
  cdp.on('Fetch.requestPaused', (event) => {
    // Only navigations count as visits; anything else (a favicon) gets a 404.
    const isDocument = event.resourceType === 'Document';
    if (isDocument) visited.push(new URL(event.request.url));
    cdp
      .send('Fetch.fulfillRequest', {
        requestId: event.requestId,
        responseCode: isDocument ? 200 : 404,
        responseHeaders: [
          { name: 'Content-Type', value: 'text/html; charset=utf-8' },
          { name: 'Cache-Control', value: 'no-store' },
        ],
        body: Buffer.from(isDocument ? relyingPartyPage : '').toString('base64'),
      })
      .catch(() => {});
  });
  await cdp.send('Fetch.enable', { patterns: [{ urlPattern: `${origin}/*`, requestStage: 'Request' }] });
  return {
    visited,
    /** Waits until `page` shows the relying party's page, and returns the URL it was sent to. */
    async arrival(): Promise<URL> {
      await page.waitForURL(`${origin}/**`);
      await page.getByRole('heading', { name: 'Back at the app' }).waitFor();
      return new URL(page.url());
    },
  };
}

const axeSource = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/**
 * Holds the requests `page` makes to URLs matching `urlPattern` (DevTools Fetch domain, like
 * interceptRelyingParty) until `release` is called: a slow network, made deterministic.
 */
export async function holdRequests(page: Page, urlPattern: string) {
  const cdp = await page.context().newCDPSession(page);
  const held: string[] = [];
  let arrived: () => void = () => {};
  const firstArrival = new Promise<void>((resolve) => (arrived = resolve));
  cdp.on('Fetch.requestPaused', (event) => {
    held.push(event.requestId);
    arrived();
  });
  await cdp.send('Fetch.enable', { patterns: [{ urlPattern, requestStage: 'Request' }] });
  return {
    held: () => firstArrival,
    async release() {
      await Promise.all(held.map((requestId) => cdp.send('Fetch.continueRequest', { requestId }).catch(() => {})));
      await cdp.send('Fetch.disable');
    },
  };
}

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[]; failureSummary?: string }[];
}

/**
 * Runs axe-core in the page and returns the violations of impact serious or critical. The pages'
 * CSP allows only same-origin scripts, so axe is evaluated through the DevTools protocol (which CSP
 * does not govern) instead of an injected <script>.
 */
export async function seriousAxeViolations(page: Page): Promise<AxeViolation[]> {
  const hasAxe = await page.evaluate(() => typeof (window as unknown as { axe?: unknown }).axe === 'object');
  if (!hasAxe) await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(context: Document, options: object): Promise<{ violations: AxeViolation[] }> } }).axe;
    const result = await axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => ({ target: n.target, failureSummary: n.failureSummary })),
    }));
  });
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

export async function expectNoSeriousAxeViolations(page: Page) {
  expect(await seriousAxeViolations(page)).toEqual([]);
}
