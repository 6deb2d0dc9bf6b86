import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import type { Page } from 'playwright-core';
import { Chromium, interceptRelyingParty, seriousAxeViolations } from '../support/chromium.ts';
import { Invitations } from '../../src/accounts/invitations.ts';
import { enqueueMail } from '../../src/delivery/dispatcher.ts';
import { codeIn, openDelivery } from '../support/mail.ts';
import { messages } from '../support/messages.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, startAuthorization, type AuthorizationStart } from '../support/relying-party.ts';

const sv = messages('sv');
const SPA = { id: 'spa', redirectUri: 'http://localhost:4000/spa-cb' };

let nyckel: TestNyckel;
let chromium: Chromium;
let spa: oidc.Configuration;

beforeAll(async () => {
  [nyckel, chromium] = await Promise.all([startTestNyckel(), Chromium.launch()]);
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

describe('the account lifecycle in Chromium (Swedish)', () => {
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
});
