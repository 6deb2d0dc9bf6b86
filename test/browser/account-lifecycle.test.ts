import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import type { Page } from 'playwright-core';
import { Chromium, interceptRelyingParty, seriousAxeViolations } from '../support/chromium.ts';
import { Invitations } from '../../src/accounts/invitations.ts';
import { enqueueMail } from '../../src/delivery/dispatcher.ts';
import { codeIn, openDelivery } from '../support/mail.ts';
import { messages } from '../support/messages.ts';
import { startTestNyckel, TEST_PASSWORD, testClientsYaml, withAppOnlyClient, type TestNyckel } from '../support/nyckel.ts';
import { parseClientsFile } from '../../src/clients/clients-file.ts';
import { TOTP_SECRET_PURPOSE } from '../../src/factors/totp/index.ts';
import { replaceRecoveryCodes } from '../../src/factors/recovery-code/index.ts';
import { resetSecondFactors } from '../../src/accounts/reset-factors.ts';
import { codeAt } from '../support/otp.ts';
import { relyingParty, startAuthorization, type AuthorizationStart } from '../support/relying-party.ts';

const sv = messages('sv');
const en = messages('en');
const SPA = { id: 'spa', redirectUri: 'http://localhost:4000/spa-cb' };

let nyckel: TestNyckel;
let chromium: Chromium;
let spa: oidc.Configuration;

beforeAll(async () => {
  const clients = parseClientsFile(withAppOnlyClient(testClientsYaml), 'clients.yaml');
  [nyckel, chromium] = await Promise.all([startTestNyckel({ clients }), Chromium.launch()]);
  spa = await relyingParty(nyckel.url, SPA.id);
});
afterEach(() => chromium?.closeContexts());
afterAll(async () => {
  await chromium?.close();
  await nyckel?.stop();
});

async function openLogin(): Promise<{ page: Page; start: AuthorizationStart; arrival: () => Promise<URL> }> {
  const context = await chromium.newContext();
  const page = await context.newPage();
  const rp = await interceptRelyingParty(page);
  const start = await startAuthorization(spa, { redirect_uri: SPA.redirectUri, scope: 'openid profile email', ui_locales: 'sv' });
  await page.goto(start.url.toString());
  return { page, start, arrival: () => rp.arrival() };
}

async function tokens(callback: URL, start: AuthorizationStart) {
  return oidc.authorizationCodeGrant(spa, callback, { pkceCodeVerifier: start.verifier, expectedState: start.state, expectedNonce: start.nonce });
}

/** Password step at the [totp]-only service in a new English browser. */
async function appOnlyPasswordStep(email: string) {
  const context = await chromium.newContext({ locale: 'en-GB' });
  const page = await context.newPage();
  const rp = await interceptRelyingParty(page);
  const config = await relyingParty(nyckel.url, 'apponly');
  const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/apponly-cb', scope: 'openid email', ui_locales: 'en' });
  await page.goto(start.url.toString());
  await page.getByLabel(en('login.name_label.username_or_email'), { exact: true }).fill(email);
  await page.getByLabel(en('login.password_label'), { exact: true }).fill(TEST_PASSWORD);
  await page.getByRole('button', { name: en('login.submit'), exact: true }).click();
  /** The claims of the ID token, once the browser is back at the service. */
  const backAtService = async () => {
    const callback = await rp.arrival();
    return (
      await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: start.verifier, expectedState: start.state, expectedNonce: start.nonce })
    ).claims();
  };
  return { page, backAtService };
}

describe('the account lifecycle in Chromium (Swedish)', () => {
  test('the language switcher changes the language of the page and keeps the sign-in', async () => {
    const user = await nyckel.accounts.create({ email: 'switcher@example.se', password: TEST_PASSWORD });
    const { page, start, arrival } = await openLogin();
    const before = page.url();
    expect(await page.locator('html').getAttribute('lang')).toBe('sv');
    await page
      .getByRole('navigation', { name: sv('common.language') })
      .getByRole('link', { name: 'English', exact: true })
      .click();
    await page.getByRole('heading', { level: 1, name: en('login.title') }).waitFor();
    expect(page.url()).toBe(before);
    expect(await page.locator('html').getAttribute('lang')).toBe('en');
    expect(await page.getByRole('link', { name: 'English', exact: true }).getAttribute('aria-current')).toBe('true');
    await page.getByLabel(en('login.name_label.username_or_email'), { exact: true }).fill('switcher@example.se');
    await page.getByLabel(en('login.password_label'), { exact: true }).fill(TEST_PASSWORD);
    await page.getByRole('button', { name: en('login.submit'), exact: true }).click();
    expect((await tokens(await arrival(), start)).claims()?.sub).toBe(user.id);
  });

  test('signing in with a user name', async () => {
    const user = await nyckel.accounts.create({ username: '202100083755', email: 'adam.browser@example.se', password: TEST_PASSWORD });
    const { page, start, arrival } = await openLogin();
    expect(await seriousAxeViolations(page)).toEqual([]);
    await page.getByLabel('Användarnamn eller e-post', { exact: true }).fill('202100083755');
    await page.getByLabel(sv('login.password_label'), { exact: true }).fill(TEST_PASSWORD);
    await page.getByRole('button', { name: sv('login.submit'), exact: true }).click();
    const callback = await arrival();
    expect((await tokens(callback, start)).claims()?.sub).toBe(user.id);
  });

  test('"Glömt lösenordet?": name, code from the mail, new password, back at the service', async () => {
    const user = await nyckel.accounts.create({ username: 'glomsk', email: 'glomsk@example.se', password: TEST_PASSWORD });
    const { page, start, arrival } = await openLogin();
    await page.getByRole('link', { name: sv('password_reset.link'), exact: true }).click();
    await page.getByRole('heading', { level: 1, name: sv('password_reset.title') }).waitFor();
    expect(await seriousAxeViolations(page)).toEqual([]);
    await page.getByLabel('Användarnamn eller e-post', { exact: true }).fill('Glomsk');
    await page.getByRole('button', { name: sv('password_reset.send'), exact: true }).click();
    await page.getByRole('heading', { level: 1, name: sv('password_reset.code_title') }).waitFor();
    expect(await seriousAxeViolations(page)).toEqual([]);
    const mail = await nyckel.db.prisma.delivery.findFirstOrThrow({ where: { recipient: 'glomsk@example.se', purpose: 'password-reset' } });
    const opened = openDelivery(nyckel.db.prisma, mail);
    expect(opened.subject).toContain(sv('password_reset.mail_subject', { code: codeIn(opened.text) }));
    await page.getByLabel(sv('password_reset.code_label'), { exact: true }).fill(codeIn(opened.text));
    await page.getByRole('button', { name: sv('password_reset.continue'), exact: true }).click();
    await page.getByRole('heading', { level: 1, name: sv('password_reset.new_title') }).waitFor();
    expect(await seriousAxeViolations(page)).toEqual([]);
    await page.getByLabel(sv('account.new_password'), { exact: true }).fill('ett nytt och långt lösenord');
    await page.getByLabel(sv('account.confirm_password'), { exact: true }).fill('ett nytt och långt lösenord');
    await page.getByRole('button', { name: sv('password_reset.save'), exact: true }).click();
    const callback = await arrival();
    expect((await tokens(callback, start)).claims()?.sub).toBe(user.id);
    expect((await nyckel.accounts.verifyPassword('glomsk', 'ett nytt och långt lösenord'))?.id).toBe(user.id);
  });

  test('an invitation: the link, "choose your password", and the account pages', async () => {
    const user = await nyckel.accounts.create({ username: 'inbjuden', email: 'inbjuden@example.se', name: 'Inga Bjuden', locale: 'sv' }, { actor: 'test' });
    const invitations = new Invitations(
      nyckel.db.prisma,
      nyckel.box,
      nyckel.audit,
      { enqueue: (tx, mail) => enqueueMail(tx, nyckel.box, mail), kick: () => {} },
      { issuer: nyckel.settings.issuer, ttlSeconds: 3600, defaultLocale: 'sv' },
    );
    await invitations.invite(user, { actor: 'test' });
    const mail = openDelivery(
      nyckel.db.prisma,
      await nyckel.db.prisma.delivery.findFirstOrThrow({ where: { recipient: 'inbjuden@example.se', purpose: 'invitation' } }),
    );
    expect(mail.subject).toBe(sv('invitation.mail_subject'));
    const link = /(https?:\/\/\S+\/invite\/\S+)/.exec(mail.text)![1];
    const page = await (await chromium.newContext({ locale: 'sv-SE' })).newPage();
    await page.goto(link);
    await page.getByRole('heading', { level: 1, name: sv('invitation.title') }).waitFor();
    expect(await seriousAxeViolations(page)).toEqual([]);
    await page.getByLabel(sv('account.new_password'), { exact: true }).fill('mitt alldeles egna lösenord');
    await page.getByLabel(sv('account.confirm_password'), { exact: true }).fill('mitt alldeles egna lösenord');
    await page.getByRole('button', { name: sv('invitation.save'), exact: true }).click();
    await page.getByText(sv('account.done.welcome')).waitFor();
    expect(new URL(page.url()).pathname).toBe('/account');
    expect((await nyckel.accounts.verifyPassword('inbjuden', 'mitt alldeles egna lösenord'))?.id).toBe(user.id);
  });

  test('a [totp]-only service and a user with only an address: a proof by email, then a new app, then back at the service', async () => {
    const user = await nyckel.accounts.create({ email: 'proof.browser@example.se', password: TEST_PASSWORD, locale: 'en' });
    const { page, backAtService } = await appOnlyPasswordStep('proof.browser@example.se');
    await page.getByText(en('mfa.proof_intro', { client: 'App portal' })).waitFor();
    expect(await seriousAxeViolations(page)).toEqual([]);
    await page.getByRole('link', { name: new RegExp(en('factors.email-code.name')) }).click();
    // Picked from the list, the code to the one address goes at once: the code page, one mail.
    await page.getByLabel(en('mfa.code_label'), { exact: true }).waitFor();
    expect(await nyckel.db.prisma.delivery.count({ where: { recipient: 'proof.browser@example.se', purpose: 'email-code' } })).toBe(1);
    const mail = await nyckel.db.prisma.delivery.findFirstOrThrow({ where: { recipient: 'proof.browser@example.se', purpose: 'email-code' } });
    await page.getByLabel(en('mfa.code_label'), { exact: true }).fill(codeIn(openDelivery(nyckel.db.prisma, mail).text));
    await page.getByRole('button', { name: en('mfa.verify'), exact: true }).click();
    await page.getByRole('heading', { level: 1, name: en('mfa.enrol_title') }).waitFor();
    await page.getByRole('button', { name: en('factors.totp.enrol_start'), exact: true }).click();
    const secret = ((await page.locator('code.secret').textContent()) ?? '').replace(/\s+/g, '');
    await page.getByLabel(en('factors.totp.enrol_code'), { exact: true }).fill(await codeAt(secret, 0));
    await page.getByRole('button', { name: en('factors.totp.enrol_confirm'), exact: true }).click();
    await page.getByRole('button', { name: en('recovery.continue'), exact: true }).click();
    expect(await backAtService()).toMatchObject({ sub: user.id, acr: 'urn:nyckel:acr:mfa' });
  });

  test('consent is asked once: a second browser goes straight back to the service', async () => {
    const user = await nyckel.accounts.create({ email: 'consent.browser@example.se', password: TEST_PASSWORD, locale: 'en' });
    const web = await relyingParty(nyckel.url, 'web', 'web-secret-web-secret-0001');
    for (const round of [1, 2]) {
      const context = await chromium.newContext({ locale: 'en-GB' });
      const page = await context.newPage();
      const rp = await interceptRelyingParty(page);
      const start = await startAuthorization(web, { redirect_uri: 'http://localhost:4000/cb', scope: 'openid email', ui_locales: 'en' });
      await page.goto(start.url.toString());
      await page.getByLabel(en('login.name_label.username_or_email'), { exact: true }).fill('consent.browser@example.se');
      await page.getByLabel(en('login.password_label'), { exact: true }).fill(TEST_PASSWORD);
      await page.getByRole('button', { name: en('login.submit'), exact: true }).click();
      if (round === 1) await page.getByRole('button', { name: en('consent.allow'), exact: true }).click();
      const callback = await rp.arrival();
      const tokens = await oidc.authorizationCodeGrant(web, callback, {
        pkceCodeVerifier: start.verifier,
        expectedState: start.state,
        expectedNonce: start.nonce,
      });
      expect(tokens.claims()?.sub).toBe(user.id);
    }
    expect(await nyckel.db.prisma.auditEvent.count({ where: { userId: user.id, type: 'consent.granted' } })).toBe(1);
  });

  test('a reset by a user with an authenticator app: the app is asked for before the new password counts', async () => {
    const user = await nyckel.accounts.create({ email: 'reset.app@example.se', password: TEST_PASSWORD, locale: 'en' });
    const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
    const app = await nyckel.db.prisma.factorEnrolment.create({ data: { userId: user.id, type: 'totp', label: 'Phone', confirmed: true } });
    await nyckel.db.prisma.factorEnrolment.update({ where: { id: app.id }, data: { secret: nyckel.box.seal(TOTP_SECRET_PURPOSE, secret, app.id) } });
    const { page, start, arrival } = await openLogin();
    await page.getByRole('link', { name: sv('password_reset.link'), exact: true }).click();
    await page.getByLabel('Användarnamn eller e-post', { exact: true }).fill('reset.app@example.se');
    await page.getByRole('button', { name: sv('password_reset.send'), exact: true }).click();
    const mail = await nyckel.db.prisma.delivery.findFirstOrThrow({ where: { recipient: 'reset.app@example.se', purpose: 'password-reset' } });
    await page.getByLabel(sv('password_reset.code_label'), { exact: true }).fill(codeIn(openDelivery(nyckel.db.prisma, mail).text));
    await page.getByRole('button', { name: sv('password_reset.continue'), exact: true }).click();
    await page.getByLabel(sv('account.new_password'), { exact: true }).fill('ett nytt och långt lösenord');
    await page.getByLabel(sv('account.confirm_password'), { exact: true }).fill('ett nytt och långt lösenord');
    await page.getByRole('button', { name: sv('password_reset.save'), exact: true }).click();
    await page.getByLabel(sv('mfa.code_label'), { exact: true }).waitFor();
    expect(await nyckel.accounts.verifyPassword('reset.app@example.se', 'ett nytt och långt lösenord')).toBeNull();
    await page.getByLabel(sv('mfa.code_label'), { exact: true }).fill(await codeAt(secret, 0));
    await page.getByRole('button', { name: sv('mfa.verify'), exact: true }).click();
    const callback = await arrival();
    expect((await tokens(callback, start)).claims()?.amr).toEqual(expect.arrayContaining(['otp']));
    expect((await nyckel.accounts.verifyPassword('reset.app@example.se', 'ett nytt och långt lösenord'))?.id).toBe(user.id);
  });

  test('after "Delete all my devices" the [totp]-only service leads to a proof, not to the administrator', async () => {
    const user = await nyckel.accounts.create({ email: 'panic.browser@example.se', password: TEST_PASSWORD, locale: 'en' });
    await nyckel.db.prisma.factorEnrolment.create({ data: { userId: user.id, type: 'totp', label: 'Lost phone', confirmed: true } });
    await resetSecondFactors(nyckel.db.prisma, nyckel.audit, user.id, { reason: 'Delete all my devices', actor: 'user' }, nyckel.accounts.revokeElsewhere);
    const { page } = await appOnlyPasswordStep('panic.browser@example.se');
    await page.getByText(en('mfa.proof_intro', { client: 'App portal' })).waitFor();
    expect(await page.getByRole('link', { name: new RegExp(en('factors.email-code.name')) }).isVisible()).toBe(true);
  });

  test('a recovery code at the [totp]-only service, through "Use another method"', async () => {
    const user = await nyckel.accounts.create({ email: 'recovery.browser@example.se', password: TEST_PASSWORD, locale: 'en' });
    await nyckel.db.prisma.factorEnrolment.create({ data: { userId: user.id, type: 'totp', label: 'Phone', confirmed: true } });
    const codes = await nyckel.db.prisma.$transaction((tx) => replaceRecoveryCodes(tx, nyckel.box, user.id, 3));
    const { page, backAtService } = await appOnlyPasswordStep('recovery.browser@example.se');
    await page.getByRole('link', { name: en('mfa.other_method'), exact: true }).click();
    await page.getByRole('link', { name: new RegExp(en('factors.recovery-code.name')) }).click();
    await page.getByLabel(en('mfa.code_label'), { exact: true }).fill(codes[1]);
    await page.getByRole('button', { name: en('mfa.verify'), exact: true }).click();
    await page.getByRole('button', { name: en('mfa.continue'), exact: true }).click();
    expect(await backAtService()).toMatchObject({ sub: user.id, acr: 'urn:nyckel:acr:mfa' });
  });
});
