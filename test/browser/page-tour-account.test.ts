// The page tour (test/support/page-tour.ts) of the account pages, the invitation and the "already signed
// in" page in sv, da and en; and a check that the tour's English detector sees English where it leaks.
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import type { Page } from 'playwright-core';
import { Invitations } from '../../src/accounts/invitations.ts';
import { enqueueMail } from '../../src/delivery/dispatcher.ts';
import { Chromium, interceptRelyingParty } from '../support/chromium.ts';
import { openDelivery, smsTo } from '../support/mail.ts';
import { messages } from '../support/messages.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { codeAt } from '../support/otp.ts';
import { inspectPage, LANGUAGES, problems, untranslatedIn, visibleText, type Language, type PageReport } from '../support/page-tour.ts';
import { relyingParty, startAuthorization } from '../support/relying-party.ts';

let nyckel: TestNyckel;
let chromium: Chromium;
const browserLocale: Record<Language, string> = { sv: 'sv-SE', da: 'da-DK', en: 'en-GB' };

beforeAll(async () => {
  [nyckel, chromium] = await Promise.all([startTestNyckel({ env: { NYCKEL_CODE_RESEND_COOLDOWN: '0' } }), Chromium.launch()]);
});
afterEach(() => chromium?.closeContexts());
afterAll(async () => {
  await chromium?.close();
  await nyckel?.stop();
});

async function tourist(language: Language) {
  const context = await chromium.newContext({ locale: browserLocale[language], viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const reports: PageReport[] = [];
  return {
    page,
    msg: messages(language),
    reports,
    async visit(name: string, heading: string) {
      await page
        .getByRole('heading', { level: 1, name: heading, exact: true })
        .waitFor()
        .catch(async () => {
          throw new Error(`${name}: no heading "${heading}" at ${page.url()}; the page says ${JSON.stringify(await page.locator('main').innerText())}`);
        });
      reports.push(await inspectPage(page, language, name));
    },
  };
}

async function login(page: Page, name: string, password = TEST_PASSWORD) {
  await page.locator('#username').fill(name);
  await page.locator('#password').fill(password);
  await page.locator('form[action$="/login"] button.primary').click();
}

const submit = (page: Page, action: string) => page.locator(`form[action$="${action}"] button[type=submit]`).first().click();

describe.each(LANGUAGES)('the account pages in %s', (language) => {
  test('overview, a Danish number added and verified, an app with its recovery codes, password, passkey, lost device', async () => {
    const tour = await tourist(language);
    const { page, msg } = tour;
    const email = `konto.${language}@example.se`;
    const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD, name: 'Kim Konto' }, { actor: 'test' });
    await nyckel.db.prisma.userEmail.updateMany({ where: { userId: user.id }, data: { verifiedAt: null } });

    await page.goto(`${nyckel.url}/account`);
    await tour.visit('account-login', msg('login.title'));
    await login(page, email);
    await tour.visit('account', msg('account.title'));

    await page.locator('#new-phone').fill('+45 20 12 34 78');
    await submit(page, '/account/phones');
    await page.getByText(msg('account.phone_code_sent', { target: '+45 xx xx xx 78', minutes: 5 })).waitFor();
    await tour.visit('account-verify-phone', msg('account.verify_phone_title'));
    const [text] = await smsTo(nyckel.db.prisma, '+4520123478');
    await page.locator('#code').fill(/#(\d{6})$/.exec(text.text)![1]);
    await submit(page, '/verify');
    await page.getByRole('status').waitFor();
    await page.getByText('+45 xx xx xx 78').first().waitFor();
    // The owner's own list writes the number out, in Danish pairs.
    await page.locator('#phones').getByText('+45 20 12 34 78', { exact: true }).waitFor();
    await tour.visit('account-phone-added', msg('account.title'));

    await submit(page, '/account/add/totp');
    await tour.visit('account-add-app', msg('factors.totp.enrol_title'));
    const secret = (await page.locator('code.secret').innerText()).replace(/\s+/g, '');
    await page.locator('#code').fill(await codeAt(secret, -1));
    await submit(page, '/verify');
    await tour.visit('account-recovery-codes', msg('recovery.title'));

    await page.goto(`${nyckel.url}/account/password`);
    await tour.visit('account-password', msg('account.change_password'));
    await page.locator('#current').fill('not my password');
    await page.locator('#password').fill('a new and long password');
    await page.locator('#confirm').fill('a new and long password');
    await submit(page, '/account/password');
    await page.getByRole('alert').waitFor();
    await tour.visit('account-password-error', msg('account.change_password'));

    await page.goto(`${nyckel.url}/account/add/passkey`);
    await tour.visit('account-add-passkey', msg('account.add_passkey'));
    await page.goto(`${nyckel.url}/account/lost-device`);
    await page.locator('h1').waitFor();
    tour.reports.push(await inspectPage(page, language, 'account-lost-device'));

    await page.goto(`${nyckel.url}/account`);
    await submit(page, '/account/logout');
    await page.locator('h1').waitFor();
    tour.reports.push(await inspectPage(page, language, 'account-signed-out'));

    expect(problems(tour.reports)).toEqual([]);
  });

  test('"Delete my account": what happens, the confirmation, and the account closed', async () => {
    const tour = await tourist(language);
    const { page, msg } = tour;
    const email = `radera.${language}@example.se`;
    const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD, name: 'Rut Radera' }, { actor: 'test' });
    await nyckel.db.prisma.userEmail.updateMany({ where: { userId: user.id }, data: { verifiedAt: null } });
    await page.goto(`${nyckel.url}/account`);
    await login(page, email);
    await page.getByRole('link', { name: msg('account.delete_account') }).click();
    await tour.visit('account-delete', msg('account.delete_account'));
    await page.getByLabel(msg('account.delete_understand')).check();
    await submit(page, '/account/delete');
    await tour.visit('account-deletion-scheduled', msg('account.deletion_scheduled_title'));
    expect((await nyckel.accounts.findById(user.id))?.status).toBe('disabled');
    expect(problems(tour.reports)).toEqual([]);
  });

  test('an invitation: choose a password, welcome, the link used again', async () => {
    const tour = await tourist(language);
    const { page, msg } = tour;
    const address = `inbjuden.${language}@example.se`;
    const user = await nyckel.accounts.create({ email: address, name: 'Inga Bjuden', locale: language }, { actor: 'test' });
    const invitations = new Invitations(
      nyckel.db.prisma,
      nyckel.box,
      nyckel.audit,
      { enqueue: (tx, mail) => enqueueMail(tx, nyckel.box, mail), kick: () => {} },
      { issuer: nyckel.settings.issuer, ttlSeconds: 3600, defaultLocale: 'sv' },
    );
    await invitations.invite(user, { actor: 'test' });
    const mail = openDelivery(nyckel.db.prisma, await nyckel.db.prisma.delivery.findFirstOrThrow({ where: { recipient: address, purpose: 'invitation' } }));
    const link = /(https?:\/\/\S+\/invite\/\S+)/.exec(mail.text)![1];
    await page.goto(link);
    await tour.visit('invitation', msg('invitation.title'));
    await page.locator('#password').fill('ett eget och långt lösenord');
    await page.locator('#confirm').fill('ett eget och långt lösenord');
    await submit(page, '/invitation');
    await page.getByRole('status').waitFor();
    await tour.visit('account-welcome', msg('account.title'));
    await page.goto(link);
    await page.locator('h1').waitFor();
    tour.reports.push(await inspectPage(page, language, 'invitation-spent'));

    expect(problems(tour.reports)).toEqual([]);
  });

  test('an interaction opened again after it finished', async () => {
    const tour = await tourist(language);
    const { page, msg } = tour;
    const email = `igen.${language}@example.se`;
    await nyckel.accounts.create({ email, password: TEST_PASSWORD }, { actor: 'test' });
    const spa = await relyingParty(nyckel.url, 'spa');
    const start = await startAuthorization(spa, { redirect_uri: 'http://localhost:4000/spa-cb' });
    const arrivals = await interceptRelyingParty(page);
    await page.goto(start.url.toString());
    const interaction = page.url();
    await login(page, email);
    await arrivals.arrival();
    await page.goto(interaction);
    await tour.visit('interaction-ended', msg('ended.title'));

    expect(problems(tour.reports)).toEqual([]);
  });
});

describe('the English detector', () => {
  test('an English catalogue text, an English sentence from outside the catalogues, or a wrong <html lang> in a Swedish page is reported', async () => {
    const page = await (await chromium.newContext({ locale: 'sv-SE' })).newPage();
    await page.goto(`${nyckel.url}/account/login`);
    await page.locator('#username').waitFor();
    expect(untranslatedIn(await visibleText(page), 'sv')).toEqual([]);

    const en = messages('en');
    await page.locator('label[for=password]').evaluate((label, text) => (label.textContent = text), en('login.password_label'));
    await page.locator('h1').evaluate((h1) => h1.insertAdjacentHTML('afterend', '<p>Please try again later.</p>'));
    // Text marked as English (the switcher's "English", a quoted technical detail) is meant so.
    await page.locator('h1').evaluate((h1) => h1.insertAdjacentHTML('afterend', '<p><code lang="en">the client is not allowed</code></p>'));
    const found = untranslatedIn(await visibleText(page), 'sv');
    expect(found).toEqual([`"${en('login.password_label')}" (login.password_label)`, '"Please" in: Please try again later.']);

    await page.locator('html').evaluate((html) => html.setAttribute('lang', 'en'));
    const report = await inspectPage(page, 'sv', 'detector-check');
    expect(problems([report])).toContain('sv/detector-check: <html lang="en">');
  });
});
