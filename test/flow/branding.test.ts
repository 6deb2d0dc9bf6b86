import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { parseClientsFile } from '../../src/clients/clients-file.ts';
import { openDeliveryBody } from '../../src/delivery/sealed-body.ts';
import { brandEnv, brandFiles, TEST_SVG_LOGO, withBrandedClient } from '../support/brand-files.ts';
import { FormBrowser, textOf, type Page } from '../support/browser.ts';
import { latestMail } from '../support/mail.ts';
import { startTestNyckel, TEST_PASSWORD, testClientsYaml, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, startAuthorization } from '../support/relying-party.ts';

let nyckel: TestNyckel;
let files: Awaited<ReturnType<typeof brandFiles>>;
let counter = 0;

beforeAll(async () => {
  files = await brandFiles();
  // "branded" brings its own name, logo, support desk and mail sender; the other clients show the installation's.
  nyckel = await startTestNyckel({
    clients: parseClientsFile(withBrandedClient(testClientsYaml, files), 'clients.yaml'),
    env: brandEnv(files),
  });
});
afterAll(async () => {
  await nyckel?.stop();
  files?.remove();
});

async function loginPage(clientId: string, browser = new FormBrowser((url) => url.port === '4000')) {
  const config = await relyingParty(nyckel.url, clientId);
  const start = await startAuthorization(config, { redirect_uri: `http://localhost:4000/${clientId}-cb`, scope: 'openid email', ui_locales: 'en' });
  return { browser, page: await browser.go(start.url.toString()) };
}

const srcs = (page: Page, className: string) => [...page.html.matchAll(new RegExp(`<img class="${className}" src="([^"]+)"`, 'g'))].map((m) => m[1]);

/** Signs in with the password, which sends the email code at once (the one address); the mail it queued, with the From name it will carry. */
async function codeMail(clientId: string) {
  const email = `brand${++counter}@example.se`;
  await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
  const { browser, page } = await loginPage(clientId);
  const after = await browser.submit(page, '/login', { username: email, password: TEST_PASSWORD });
  expect(after.url).toMatch(/\/mfa\/email-code\/challenge\/[0-9a-f-]{36}$/);
  const mail = await latestMail(nyckel.db.prisma, email);
  return { mail, body: openDeliveryBody(nyckel.box, mail)! };
}

describe('branding per installation and per client', () => {
  test("a client's sign-in page shows its logo and name under the installation's name and logo", async () => {
    const { page } = await loginPage('branded');
    expect(page.status).toBe(200);
    expect(page.html).toMatch(/<title>[^<]* · IDEP\.WEB<\/title>/);
    expect(page.html).toContain('<span class="brand-name">IDEP.WEB</span>');
    expect(srcs(page, 'brand-logo')).toEqual([expect.stringMatching(/^\/assets\/logo-[\w-]{16}\.svg$/)]);
    expect(srcs(page, 'client-logo')).toEqual([expect.stringMatching(/^\/assets\/logo-[\w-]{16}\.png$/)]);
    expect(textOf(page.html)).toContain('Signing in to Statistikportalen');
    expect(page.html).not.toContain('Internal portal label');
    expect(page.html).toMatch(/<link rel="stylesheet" href="\/assets\/brand-[\w-]{16}\.css">/);
    expect(page.html).not.toMatch(/style=/);
  });

  test("another client's page shows the installation's brand alone", async () => {
    const { page } = await loginPage('spa');
    expect(srcs(page, 'brand-logo')).toHaveLength(1);
    expect(srcs(page, 'client-logo')).toEqual([]);
    expect(textOf(page.html)).toContain('Signing in to Care portal');
    expect(textOf(page.html)).not.toContain('Nyckel');
  });

  test("the service's name replaces Nyckel in the pages' own strings (home page, account pages' sign-in)", async () => {
    const home = await new FormBrowser().go(new URL('/', nyckel.url).toString());
    expect(home.html).toContain('<h1>IDEP.WEB</h1>');
    expect(home.html).toContain('<title>IDEP.WEB · IDEP.WEB</title>');
    const account = await new FormBrowser((url) => url.pathname === '/account/callback').go(new URL('/account/login', nyckel.url).toString());
    expect(textOf(account.html)).toContain('Signing in to IDEP.WEB');
    expect(textOf(home.html + account.html)).not.toContain('Nyckel');
  });

  test('the logos and the colour stylesheet are served by Nyckel with their type, long caching and the CSP intact', async () => {
    const { page } = await loginPage('branded');
    const [logo] = srcs(page, 'brand-logo');
    const [clientLogo] = srcs(page, 'client-logo');
    const stylesheet = /href="(\/assets\/brand-[\w-]{16}\.css)"/.exec(page.html)![1];

    const svg = await fetch(new URL(logo, nyckel.url));
    expect(svg.status).toBe(200);
    expect(svg.headers.get('content-type')).toBe('image/svg+xml');
    expect(svg.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(svg.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await svg.text()).toBe(TEST_SVG_LOGO);
    const csp = svg.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(page.headers.get('content-security-policy')).toBe(csp);

    const png = await fetch(new URL(clientLogo, nyckel.url));
    expect(png.headers.get('content-type')).toBe('image/png');
    expect(
      Buffer.from(await png.arrayBuffer())
        .subarray(1, 4)
        .toString(),
    ).toBe('PNG');

    const css = await fetch(new URL(stylesheet, nyckel.url));
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect(await css.text()).toContain('--accent: #0066aa;');

    expect((await fetch(new URL('/assets/logo-AAAAAAAAAAAAAAAA.png', nyckel.url))).status).toBe(404);
    // The pages' own scripts are still served from the same path.
    expect((await fetch(new URL('/assets/wait.js', nyckel.url))).status).toBe(200);
  });

  test("error pages name the installation's support; within a client's sign-in, the client's", async () => {
    const lost = await new FormBrowser().go(new URL('/no-such-page', nyckel.url).toString());
    expect(lost.status).toBe(404);
    expect(textOf(lost.html)).toContain('Växeln, 08-123 45 67');
    expect(lost.html).toContain('<a href="mailto:support@idep.example">support@idep.example</a>');

    const { browser } = await loginPage('branded');
    const expired = await browser.go(new URL('/interaction/not-an-interaction/mfa', nyckel.url).toString());
    expect(expired.status).toBeGreaterThanOrEqual(400);
    expect(expired.html).toContain('<a href="mailto:help@portal.example">help@portal.example</a>');
    expect(textOf(expired.html)).toContain('Portal desk');
    expect(expired.html).not.toContain('support@idep.example');
  });

  test("mail for a client is sent in its sender's name and names its support; other mail in the installation's", async () => {
    const branded = await codeMail('branded');
    expect(branded.body.fromName).toBe('Statistikportalen');
    expect(branded.mail.text).toContain('— IDEP.WEB. This mail was sent automatically');
    expect(branded.mail.text).toContain('Need help? Contact Portal desk · help@portal.example');
    expect(branded.mail.html).toContain('<a href="mailto:help@portal.example">help@portal.example</a>');

    const plain = await codeMail('selfservice');
    expect(plain.body.fromName).toBe('IDEP.WEB');
    expect(plain.mail.text).toContain('Need help? Contact Växeln, 08-123 45 67 · support@idep.example');
  });
});
