// The page tour (test/support/page-tour.ts) of the email factors' pages (code, link, the link opened in
// another browser), the passkey sign-in page and setting up a second step by email, in sv, da and en.
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import type * as oidc from 'openid-client';
import type { Page } from 'playwright-core';
import { Chromium } from '../support/chromium.ts';
import { latestMail, linkIn } from '../support/mail.ts';
import { messages } from '../support/messages.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { inspectPage, LANGUAGES, problems, type Language, type PageReport } from '../support/page-tour.ts';
import { relyingParty, startAuthorization } from '../support/relying-party.ts';

let nyckel: TestNyckel;
let chromium: Chromium;
const clients = {
  selfservice: 'http://localhost:4000/selfservice-cb',
  keys: 'http://localhost:4000/keys-cb',
  phone: 'http://localhost:4000/phone-cb',
};
const rp = {} as Record<keyof typeof clients, oidc.Configuration>;
const browserLocale: Record<Language, string> = { sv: 'sv-SE', da: 'da-DK', en: 'en-GB' };

beforeAll(async () => {
  [nyckel, chromium] = await Promise.all([startTestNyckel({ env: { NYCKEL_CODE_RESEND_COOLDOWN: '0' } }), Chromium.launch()]);
  for (const id of Object.keys(clients) as (keyof typeof clients)[]) rp[id] = await relyingParty(nyckel.url, id);
});
afterEach(() => chromium?.closeContexts());
afterAll(async () => {
  await chromium?.close();
  await nyckel?.stop();
});

async function tourist(language: Language) {
  const newPage = async () => (await chromium.newContext({ locale: browserLocale[language], viewport: { width: 1280, height: 800 } })).newPage();
  const page = await newPage();
  const reports: PageReport[] = [];
  return {
    page,
    newPage,
    msg: messages(language),
    reports,
    async visit(name: string, heading: string, on = page) {
      await on
        .getByRole('heading', { level: 1, name: heading, exact: true })
        .waitFor()
        .catch(async () => {
          throw new Error(`${name}: no heading "${heading}" at ${on.url()}; the page says ${JSON.stringify(await on.locator('main').innerText())}`);
        });
      reports.push(await inspectPage(on, language, name));
    },
  };
}

async function signIn(page: Page, client: keyof typeof clients, name: string) {
  const start = await startAuthorization(rp[client], { redirect_uri: clients[client], scope: 'openid email' });
  await page.goto(start.url.toString());
  await page.locator('#username').fill(name);
  await page.locator('#password').fill(TEST_PASSWORD);
  await page.locator('form[action$="/login"] button.primary').click();
}

const interactionPath = (page: Page) => /^\/interaction\/[^/]+/.exec(new URL(page.url()).pathname)![0];

describe.each(LANGUAGES)('the factor pages in %s', (language) => {
  test('a code and a link by email, the link opened in another browser', async () => {
    const tour = await tourist(language);
    const { page, msg } = tour;
    const email = `epost.${language}@example.se`;
    await nyckel.accounts.create({ email, password: TEST_PASSWORD }, { actor: 'test' });

    // The primary method starts at once: the code to the one address is sent after the password.
    await signIn(page, 'selfservice', email);
    await page.locator('#code').waitFor();
    await tour.visit('mfa-email-code', msg('factors.email-code.name'));
    const interaction = `${nyckel.url}${interactionPath(page)}`;
    await page.goto(`${interaction}/mfa?choose=1`);
    await tour.visit('mfa-choose-email', msg('mfa.choose_title'));
    // The start page, as a user with several addresses sees it.
    await page.goto(`${interaction}/mfa/email-code`);
    await tour.visit('mfa-email-code-start', msg('factors.email-code.name'));

    await page.goto(`${interaction}/mfa/email-link`);
    await tour.visit('mfa-email-link-start', msg('factors.email-link.name'));
    await page.locator('form[action$="/start"] button.primary').click();
    await tour.visit('mfa-email-link-sent', msg('link.sent_title'));
    const elsewhere = await tour.newPage();
    await elsewhere.goto(linkIn((await latestMail(nyckel.db.prisma, email)).text));
    // Another browser: the page says to open the link where the sign-in started.
    await elsewhere.locator('h1').waitFor();
    tour.reports.push(await inspectPage(elsewhere, language, 'link-other-browser'));

    expect(problems(tour.reports)).toEqual([]);
  });

  test('the passkey sign-in page, and a second step set up by proving an address', async () => {
    const tour = await tourist(language);
    const { page, msg } = tour;
    const email = `telefon.${language}@example.se`;
    const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD }, { actor: 'test' });
    await nyckel.db.prisma.userEmail.updateMany({ where: { userId: user.id }, data: { verifiedAt: null } });

    const start = await startAuthorization(rp.keys, { redirect_uri: clients.keys, scope: 'openid email' });
    await page.goto(start.url.toString());
    await page.goto(`${nyckel.url}${interactionPath(page)}/passkey-login`);
    await tour.visit('passkey-login', msg('factors.passkey.passwordless_title'));

    // The phone app cannot be set up here (no push service): the address is offered, and proven by a code.
    await signIn(page, 'phone', email);
    await tour.visit('mfa-enrol-address', msg('mfa.enrol_title'));
    await page.locator('form[action$="/start"] button.primary').click();
    await page.locator('#code').waitFor();
    await tour.visit('mfa-enrol-address-code', msg('mfa.enrol_title'));

    expect(problems(tour.reports)).toEqual([]);
  });
});
