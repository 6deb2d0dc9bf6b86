// A tour of the hosted sign-in pages in sv, da and en: each state is photographed at 1280×800 and
// 390×844 (test-artifacts/screenshots, or NYCKEL_SCREENSHOTS_DIR), and checked for horizontal overflow,
// axe violations, <html lang> and English left in a Swedish or Danish page (test/support/page-tour.ts).
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import type { Page } from 'playwright-core';
import { Chromium, interceptRelyingParty } from '../support/chromium.ts';
import { codeIn, latestMail } from '../support/mail.ts';
import { messages } from '../support/messages.ts';
import { DEVICE_CODE_GRANT, parseClientsFile } from '../../src/clients/clients-file.ts';
import { startTestNyckel, TEST_PASSWORD, testClientsYaml, type TestNyckel } from '../support/nyckel.ts';
import { codeAt } from '../support/otp.ts';
import { inspectPage, LANGUAGES, problems, type Language, type PageReport } from '../support/page-tour.ts';
import { relyingParty, startAuthorization } from '../support/relying-party.ts';

let nyckel: TestNyckel;
let chromium: Chromium;
const rp: Record<'web' | 'authapp' | 'care' | 'tv', oidc.Configuration> = {} as never;
const redirect = { web: 'http://localhost:4000/cb', authapp: 'http://localhost:4000/authapp-cb', care: 'http://localhost:4000/care-cb' };
const browserLocale: Record<Language, string> = { sv: 'sv-SE', da: 'da-DK', en: 'en-GB' };

beforeAll(async () => {
  // "Forgot your device?" is offered by the authenticator portal here; a TV signs in with a device code.
  const clients = parseClientsFile(
    testClientsYaml
      .replace('methods: [totp, recovery-code, email-code] }', 'methods: [totp, recovery-code, email-code], forgot_device_email: true }')
      .replace(
        'resources:',
        `  - { client_id: tv, name: Living room TV, first_party: true, token_endpoint_auth_method: none, grant_types: ['${DEVICE_CODE_GRANT}'] }\nresources:`,
      ),
    'clients.yaml',
  );
  [nyckel, chromium] = await Promise.all([startTestNyckel({ clients, env: { NYCKEL_CODE_RESEND_COOLDOWN: '0' } }), Chromium.launch()]);
  [rp.web, rp.authapp, rp.care, rp.tv] = await Promise.all([
    relyingParty(nyckel.url, 'web', 'web-secret-web-secret-0001'),
    relyingParty(nyckel.url, 'authapp'),
    relyingParty(nyckel.url, 'care'),
    relyingParty(nyckel.url, 'tv'),
  ]);
});
afterEach(() => chromium?.closeContexts());
afterAll(async () => {
  await chromium?.close();
  await nyckel?.stop();
});

/** A browser that speaks `language` (Accept-Language), with the relying parties intercepted. */
async function tourist(language: Language) {
  const context = await chromium.newContext({ locale: browserLocale[language], viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const arrivals = await interceptRelyingParty(page);
  const reports: PageReport[] = [];
  const msg = messages(language);
  return {
    context,
    page,
    arrivals,
    msg,
    reports,
    /** Waits for the page headed `heading` and inspects it as `name`. */
    async visit(name: string, heading: string | RegExp) {
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

async function openAuthorization(page: Page, client: keyof typeof redirect, params: Record<string, string> = {}) {
  const start = await startAuthorization(rp[client], { redirect_uri: redirect[client], scope: 'openid email', ...params });
  await page.goto(start.url.toString());
}

async function login(page: Page, name: string, password = TEST_PASSWORD) {
  await page.locator('#username').fill(name);
  await page.locator('#password').fill(password);
  await page.locator('form[action$="/login"] button.primary').click();
}

const interactionPath = (page: Page) => /^\/interaction\/[^/]+/.exec(new URL(page.url()).pathname)![0];

describe.each(LANGUAGES)('the sign-in pages in %s', (language) => {
  test('home, 404, a request the app got wrong, login, a wrong password, forgot password, consent and logout', async () => {
    const tour = await tourist(language);
    const { page, msg } = tour;
    const email = `tour.${language}@example.se`;
    await nyckel.accounts.create({ email, password: TEST_PASSWORD, name: 'Turi Turist' }, { actor: 'test' });

    await page.goto(nyckel.url);
    await tour.visit('home', msg('home.title'));
    expect((await page.goto(`${nyckel.url}/no-such-page`))?.status()).toBe(404);
    await tour.visit('not-found', msg('errors.title'));
    const badRedirect = await startAuthorization(rp.web, { redirect_uri: 'http://localhost:4000/not-registered' });
    expect((await page.goto(badRedirect.url.toString()))?.status()).toBe(400);
    await tour.visit('oauth-error', msg('errors.title'));
    // Why, in the page's language; oidc-provider's English words only as a detail quoted for support.
    await page.getByText(msg('errors.oauth_reasons.invalid_redirect_uri'), { exact: true }).waitFor();
    expect(await page.locator('code[lang=en]').innerText()).toMatch(/^invalid_redirect_uri: redirect_uri did not match/);

    await openAuthorization(page, 'web', { prompt: 'consent' });
    await tour.visit('login', msg('login.title'));
    await login(page, email, 'not the password at all');
    await page.getByRole('alert').waitFor();
    await tour.visit('login-wrong-password', msg('login.title'));

    await page.goto(`${nyckel.url}${interactionPath(page)}/forgot-password`);
    await tour.visit('password-forgot', msg('password_reset.title'));
    await page.locator('#name').fill(email);
    await page.locator('form[action$="/forgot-password"] button.primary').click();
    await tour.visit('password-reset-code', msg('password_reset.code_title'));
    await page.locator('#code').fill(codeIn((await latestMail(nyckel.db.prisma, email)).text));
    await page.locator('form[action$="/forgot-password/code"] button.primary').click();
    await tour.visit('password-new', msg('password_reset.new_title'));
    await page.locator('#password').fill(`${TEST_PASSWORD} again`);
    await page.locator('#confirm').fill(`${TEST_PASSWORD} again`);
    await page.locator('form[action$="/forgot-password/new"] button.primary').click();
    await tour.visit('consent', msg('consent.title'));
    await page.locator('button[name=decision][value=allow]').click();
    await tour.arrivals.arrival();

    await page.goto(`${nyckel.url}/session/end?client_id=web`);
    await tour.visit('logout', msg('logout.title'));
    await page.locator('button[name=logout][value=yes]').click();
    await tour.visit('logged-out', msg('logged_out.title'));

    expect(problems(tour.reports)).toEqual([]);
  });

  test('device sign-in: the code page, a wrong code, the confirmation, signed in, cancelled', async () => {
    const tour = await tourist(language);
    const { page, msg } = tour;
    const email = `tv.${language}@example.se`;
    await nyckel.accounts.create({ email, password: TEST_PASSWORD }, { actor: 'test' });
    const typeCode = async (code: string) => {
      await page.locator('#user_code').fill(code);
      await page.locator('form[action$="/device"] button.primary').click();
    };

    const device = await oidc.initiateDeviceAuthorization(rp.tv, { scope: 'openid email' });
    await page.goto(`${nyckel.url}/device`);
    await tour.visit('device-code', msg('device.title'));
    await typeCode('BBBB-BBBB');
    await page.getByRole('alert').waitFor();
    await tour.visit('device-code-wrong', msg('device.title'));
    await typeCode(device.user_code);
    await tour.visit('device-confirm', msg('device.confirm_title', { client: 'Living room TV' }));
    await page.locator('button[name=confirm]').click();
    await login(page, email);
    await tour.visit('device-done', msg('device.done_title'));

    const declined = await oidc.initiateDeviceAuthorization(rp.tv, { scope: 'openid email' });
    await page.goto(`${nyckel.url}/device`);
    await typeCode(declined.user_code);
    await page.locator('button[name=abort]').click();
    await page.getByText(msg('device.aborted')).waitFor();
    await tour.visit('device-cancelled', msg('device.title'));

    expect(problems(tour.reports)).toEqual([]);
  });

  test('second factors: enrol an app, recovery codes, the app code, choose another method, forgot device, SMS to a Danish number', async () => {
    const tour = await tourist(language);
    const { page, msg } = tour;
    const email = `app.${language}@example.se`;
    const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD }, { actor: 'test' });
    await nyckel.db.prisma.userEmail.updateMany({ where: { userId: user.id }, data: { verifiedAt: null } });

    await openAuthorization(page, 'authapp');
    await login(page, email);
    await tour.visit('mfa-enrol', msg('mfa.enrol_title'));
    await page.locator('form[action$="/mfa/enrol/totp/start"] button.primary').click();
    await tour.visit('mfa-enrol-app', msg('factors.totp.enrol_title'));
    const secret = (await page.locator('code.secret').innerText()).replace(/\s+/g, '');
    await page.locator('#code').fill(await codeAt(secret, -1));
    await page.locator('form[action$="/verify"] button.primary').click();
    await tour.visit('mfa-recovery-codes', msg('recovery.title'));
    await page.locator('form[action$="/mfa/continue"] button.primary').click();
    await tour.arrivals.arrival();

    await tour.context.clearCookies();
    await openAuthorization(page, 'authapp');
    await login(page, email);
    await tour.visit('mfa-code-app', msg('factors.totp.name'));
    await page.locator('#code').fill('000000');
    await page.locator('form[action$="/verify"] button.primary').click();
    await page.getByRole('alert').waitFor();
    await tour.visit('mfa-code-wrong', msg('factors.totp.name'));
    await page.goto(`${nyckel.url}${interactionPath(page)}/mfa?choose=1`);
    await tour.visit('mfa-choose', msg('mfa.choose_title'));
    await page.goto(`${nyckel.url}${interactionPath(page)}/mfa/forgot`);
    await tour.visit('mfa-forgot', msg('forgot.title'));

    const phoneUser = await nyckel.accounts.create({ email: `sms.${language}@example.dk`, password: TEST_PASSWORD }, { actor: 'test' });
    await nyckel.db.prisma.userPhone.create({ data: { userId: phoneUser.id, e164: '+4520123478', verifiedAt: new Date() } });
    await tour.context.clearCookies();
    await openAuthorization(page, 'care');
    // The primary method starts at once: the text to the one number is sent after the password.
    await login(page, `sms.${language}@example.dk`);
    await page.getByText(msg('factors.sms.code_sent', { target: '+45 xx xx xx 78', minutes: 5 })).waitFor();
    await tour.visit('mfa-sms-code', msg('factors.sms.name'));
    const interaction = page.url();
    await page.goto(`${nyckel.url}${interactionPath(page)}/mfa?choose=1`);
    await tour.visit('mfa-choose-sms', msg('mfa.choose_title'));
    // The start page, as a user with several numbers sees it.
    await page.goto(`${nyckel.url}${interactionPath(page)}/mfa/sms`);
    await page.getByText('+45 xx xx xx 78', { exact: true }).waitFor();
    await tour.visit('mfa-sms-start', msg('factors.sms.name'));

    await tour.context.clearCookies();
    await page.goto(interaction);
    await tour.visit('session-expired', msg('errors.title'));

    expect(problems(tour.reports)).toEqual([]);
  });
});
