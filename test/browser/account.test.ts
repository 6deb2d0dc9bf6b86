// The account pages in a real Chromium, in Swedish: a user adds an authenticator app and a passkey
// (Chromium's virtual authenticator over the DevTools protocol), renames the app, reorders and removes
// methods, and then signs in to a relying party with the method now primary.
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import type { Page } from 'playwright-core';
import { parseClientsFile } from '../../src/clients/clients-file.ts';
import { Chromium, interceptRelyingParty, seriousAxeViolations } from '../support/chromium.ts';
import { startTestNyckel, TEST_PASSWORD, testClientsYaml, type TestNyckel } from '../support/nyckel.ts';
import { messages } from '../support/messages.ts';
import { codeAt } from '../support/otp.ts';
import { relyingParty, startAuthorization } from '../support/relying-party.ts';

const msg = messages('sv');

const CLIENT = { id: 'devices', redirectUri: 'http://localhost:4000/devices-cb' };
let nyckel: TestNyckel;
let chromium: Chromium;

beforeAll(async () => {
  const clients = parseClientsFile(
    testClientsYaml.replace(
      'resources:',
      `  - client_id: devices
    name: Vårdportalen
    first_party: true
    token_endpoint_auth_method: none
    redirect_uris: [${CLIENT.redirectUri}]
    scopes: [openid, email]
    mfa: { required: true, methods: [totp, passkey, recovery-code] }
resources:`,
    ),
    'clients.yaml',
  );
  [nyckel, chromium] = await Promise.all([startTestNyckel({ clients }), Chromium.launch()]);
});
afterEach(() => chromium?.closeContexts());
afterAll(async () => {
  await chromium?.close();
  await nyckel?.stop();
});

async function virtualAuthenticator(page: Page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { cdp, authenticatorId };
}

const heading = (page: Page, name: string) => page.getByRole('heading', { level: 1, name, exact: true });
const methodOrder = (page: Page) => page.locator('#methods [data-method]').evaluateAll((items) => items.map((item) => item.getAttribute('data-method')));

describe('account pages in Chromium', () => {
  test('add an app and a passkey, rename, reorder, remove, then sign in with the new primary', async () => {
    const email = 'karin@vard.example';
    const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'sv' });
    await nyckel.db.prisma.userEmail.updateMany({ where: { userId: user.id }, data: { verifiedAt: null } });
    const context = await chromium.newContext({ locale: 'sv-SE' });
    const page = await context.newPage();
    await virtualAuthenticator(page);

    await page.goto(`${nyckel.url}/account`);
    await page.getByLabel(msg('login.name_label.username_or_email'), { exact: true }).fill(email);
    await page.getByLabel(msg('login.password_label'), { exact: true }).fill(TEST_PASSWORD);
    await page.getByRole('button', { name: msg('login.submit'), exact: true }).click();
    await heading(page, msg('account.title')).waitFor();
    expect(await seriousAxeViolations(page)).toEqual([]);

    // An authenticator app: QR code and key, a name, the first code; recovery codes come with it.
    await page.getByRole('button', { name: msg('account.add_totp'), exact: true }).click();
    await heading(page, msg('factors.totp.enrol_title')).waitFor();
    const secret = (await page.locator('code.secret').innerText()).replace(/\s+/g, '');
    await page.getByLabel(msg('factors.totp.label_label'), { exact: true }).fill('Jobbtelefon');
    await page.getByLabel(msg('factors.totp.enrol_code'), { exact: true }).fill(await codeAt(secret, -1));
    await page.getByRole('button', { name: msg('factors.totp.enrol_confirm'), exact: true }).click();
    await heading(page, msg('recovery.title')).waitFor();
    await page.getByRole('link', { name: msg('account.codes_saved'), exact: true }).click();
    await heading(page, msg('account.title')).waitFor();

    // A passkey, created by the browser's WebAuthn ceremony: it is the newest, so it becomes primary.
    await page.getByRole('link', { name: msg('account.add_passkey'), exact: true }).click();
    await heading(page, msg('account.add_passkey')).waitFor();
    await page.getByLabel(msg('account.passkey_name'), { exact: true }).fill('Min dator');
    await page.getByRole('button', { name: msg('account.passkey_create'), exact: true }).click();
    await page
      .getByRole('status')
      .filter({ hasText: msg('account.done.method_added') })
      .waitFor();
    expect(await methodOrder(page)).toEqual(['passkey', 'totp']);
    expect(await page.locator('#enrolments').innerText()).toContain('Min dator');
    expect(await seriousAxeViolations(page)).toEqual([]);

    // Rename the app.
    const app = page.locator('#enrolments li', { hasText: 'Jobbtelefon' });
    await app.getByText(msg('account.rename'), { exact: true }).click();
    await app.getByLabel(msg('account.new_name'), { exact: true }).fill('Tjänstemobil');
    await app.getByRole('button', { name: msg('account.save'), exact: true }).click();
    await page
      .getByRole('status')
      .filter({ hasText: msg('account.done.method_renamed') })
      .waitFor();
    expect(await page.locator('#enrolments').innerText()).toContain('Tjänstemobil');

    // The app to the top, the passkey dragged back, then removed: the app is the one method left besides the codes.
    await page
      .locator('#methods li[data-method="totp"]')
      .getByRole('button', { name: msg('account.make_primary'), exact: true })
      .click();
    await page
      .getByRole('status')
      .filter({ hasText: msg('account.done.methods_reordered') })
      .waitFor();
    expect(await methodOrder(page)).toEqual(['totp', 'passkey']);
    // With JavaScript the list can also be dragged: the passkey back on top.
    await page.locator('#methods li[data-method="passkey"]').dragTo(page.locator('#methods li[data-method="totp"]'), { targetPosition: { x: 10, y: 2 } });
    await page
      .getByRole('status')
      .filter({ hasText: msg('account.done.methods_reordered') })
      .waitFor();
    expect(await methodOrder(page)).toEqual(['passkey', 'totp']);
    await page
      .locator('#enrolments li', { hasText: 'Min dator' })
      .getByRole('button', { name: msg('account.remove'), exact: true })
      .click();
    await page
      .getByRole('status')
      .filter({ hasText: msg('account.done.method_removed') })
      .waitFor();
    expect(await methodOrder(page)).toEqual(['totp']);
    expect(await nyckel.db.prisma.factorEnrolment.count({ where: { userId: user.id, type: 'passkey' } })).toBe(0);

    // Signing in to a relying party now goes straight to the app, the primary method.
    const config = await relyingParty(nyckel.url, CLIENT.id);
    const other = await chromium.newContext({ locale: 'sv-SE' });
    const page2 = await other.newPage();
    const rp = await interceptRelyingParty(page2);
    const start = await startAuthorization(config, { redirect_uri: CLIENT.redirectUri, scope: 'openid email' });
    await page2.goto(start.url.toString());
    await page2.getByLabel(msg('login.name_label.username_or_email'), { exact: true }).fill(email);
    await page2.getByLabel(msg('login.password_label'), { exact: true }).fill(TEST_PASSWORD);
    await page2.getByRole('button', { name: msg('login.submit'), exact: true }).click();
    await heading(page2, msg('factors.totp.name')).waitFor();
    await page2.getByLabel(msg('mfa.code_label'), { exact: true }).fill(await codeAt(secret, 0));
    await page2.getByRole('button', { name: msg('mfa.verify'), exact: true }).click();
    const tokens = await oidc.authorizationCodeGrant(config, await rp.arrival(), {
      pkceCodeVerifier: start.verifier,
      expectedState: start.state,
      expectedNonce: start.nonce,
    });
    expect(tokens.claims()).toMatchObject({ sub: user.id, acr: 'urn:nyckel:acr:mfa', amr: ['pwd', 'otp', 'mfa'] });
  });
});
