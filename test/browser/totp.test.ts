// An authenticator app in a real Chromium, as TDC's users (Danish) set it up: the QR code and the key
// for typing by hand, a name for the app, the first code; the recovery codes shown once; and the next
// sign-in with a code from the app. openid-client is the relying party and redeems the code.
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import type { Page } from 'playwright-core';
import { Chromium, interceptRelyingParty, seriousAxeViolations } from '../support/chromium.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { messages } from '../support/messages.ts';
import { codeAt } from '../support/otp.ts';
import { relyingParty, startAuthorization, type AuthorizationStart } from '../support/relying-party.ts';

const msg = messages('da');

const APP = { id: 'authapp', redirectUri: 'http://localhost:4000/authapp-cb' };
let nyckel: TestNyckel;
let chromium: Chromium;
let rpConfig: oidc.Configuration;

beforeAll(async () => {
  [nyckel, chromium] = await Promise.all([startTestNyckel(), Chromium.launch()]);
  rpConfig = await relyingParty(nyckel.url, APP.id);
});
afterEach(() => chromium?.closeContexts());
afterAll(async () => {
  await chromium?.close();
  await nyckel?.stop();
});

async function signInWithPassword(page: Page, email: string): Promise<AuthorizationStart> {
  const start = await startAuthorization(rpConfig, { redirect_uri: APP.redirectUri, scope: 'openid email', ui_locales: 'da' });
  await page.goto(start.url.toString());
  await page.getByLabel(msg('login.name_label.username_or_email'), { exact: true }).fill(email);
  await page.getByLabel(msg('login.password_label'), { exact: true }).fill(TEST_PASSWORD);
  await page.getByRole('button', { name: msg('login.submit'), exact: true }).click();
  return start;
}

async function expectMfa(callback: URL, start: AuthorizationStart, userId: string) {
  const tokens = await oidc.authorizationCodeGrant(rpConfig, callback, {
    pkceCodeVerifier: start.verifier,
    expectedState: start.state,
    expectedNonce: start.nonce,
  });
  expect(tokens.claims()).toMatchObject({ sub: userId, acr: 'urn:nyckel:acr:mfa', amr: ['pwd', 'otp', 'mfa'] });
}

const heading = (page: Page, name: string) => page.getByRole('heading', { level: 1, name, exact: true });

describe('authenticator app in Chromium', () => {
  test('TDC (da): set up by QR code during sign-in, recovery codes shown once, then a sign-in with a code from the app', async () => {
    const email = 'anne@tdc.example';
    const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD }, { actor: 'test' });
    await nyckel.db.prisma.userEmail.updateMany({ where: { userId: user.id }, data: { verifiedAt: null } });

    const context = await chromium.newContext();
    const page = await context.newPage();
    const rp = await interceptRelyingParty(page);
    const start = await signInWithPassword(page, email);

    await heading(page, msg('mfa.enrol_title')).waitFor();
    await page.getByRole('button', { name: msg('factors.totp.enrol_start'), exact: true }).click();

    await heading(page, msg('factors.totp.enrol_title')).waitFor();
    // The QR code is an image the CSP lets load (img-src data:), with a text alternative.
    const qr = page.getByRole('img', { name: msg('factors.totp.qr_alt'), exact: true });
    expect(await qr.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0)).toBe(true);
    const secret = (await page.locator('code.secret').innerText()).replace(/\s+/g, '');
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(await seriousAxeViolations(page)).toEqual([]);

    await page.getByLabel(msg('factors.totp.label_label'), { exact: true }).fill('Min telefon');
    await page.getByLabel(msg('factors.totp.enrol_code'), { exact: true }).fill(await codeAt(secret, -1));
    await page.getByRole('button', { name: msg('factors.totp.enrol_confirm'), exact: true }).click();

    await heading(page, msg('recovery.title')).waitFor();
    const codes = (await page.locator('pre.recovery-codes').innerText()).trim().split(/\s+/);
    expect(codes).toHaveLength(10);
    const download = page.getByRole('link', { name: msg('recovery.download'), exact: true });
    expect(await download.getAttribute('download')).toBe('recovery-codes.txt');
    // Copy puts exactly the codes on the clipboard; Print is offered (both need JavaScript).
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(nyckel.url).origin });
    await page.getByRole('button', { name: msg('recovery.copy'), exact: true }).click();
    await page.getByRole('button', { name: msg('recovery.copied'), exact: true }).waitFor();
    expect((await page.evaluate(() => navigator.clipboard.readText())).trim().split(/\s+/)).toEqual(codes);
    expect(await page.getByRole('button', { name: msg('recovery.print'), exact: true }).isVisible()).toBe(true);
    expect(await seriousAxeViolations(page)).toEqual([]);
    expect(rp.visited).toEqual([]);
    await page.getByRole('button', { name: msg('recovery.continue'), exact: true }).click();
    await expectMfa(await rp.arrival(), start, user.id);
    expect(await nyckel.db.prisma.factorEnrolment.findFirst({ where: { userId: user.id, type: 'totp' } })).toMatchObject({
      label: 'Min telefon',
      confirmed: true,
    });

    // Another browser, another day: the app's code.
    const other = await chromium.newContext();
    const page2 = await other.newPage();
    const rp2 = await interceptRelyingParty(page2);
    const start2 = await signInWithPassword(page2, email);
    // The app at once; the recovery codes are behind "Use another method".
    await heading(page2, msg('factors.totp.name')).waitFor();
    expect(await page2.getByRole('link', { name: msg('mfa.other_method'), exact: true }).count()).toBe(1);
    expect(await page2.getByRole('button', { name: msg('mfa.resend') }).count()).toBe(0);
    expect(await seriousAxeViolations(page2)).toEqual([]);
    await page2.getByLabel(msg('mfa.code_label'), { exact: true }).fill(await codeAt(secret, 0));
    await page2.getByRole('button', { name: msg('mfa.verify'), exact: true }).click();
    await expectMfa(await rp2.arrival(), start2, user.id);

    // The phone is lost: a recovery code, through "Use another method"; the page says how many are left.
    const third = await chromium.newContext();
    const page3 = await third.newPage();
    const rp3 = await interceptRelyingParty(page3);
    const start3 = await signInWithPassword(page3, email);
    await heading(page3, msg('factors.totp.name')).waitFor();
    await page3.getByRole('link', { name: msg('mfa.other_method'), exact: true }).click();
    await page3.getByRole('link', { name: new RegExp(msg('factors.recovery-code.name')) }).click();
    await page3.getByLabel(msg('mfa.code_label'), { exact: true }).fill(codes[3]);
    await page3.getByRole('button', { name: msg('mfa.verify'), exact: true }).click();
    await heading(page3, msg('factors.recovery-code.left_title')).waitFor();
    expect(await page3.getByRole('status').innerText()).toContain(msg('factors.recovery-code.left', { count: 9 }));
    await page3.getByRole('button', { name: msg('mfa.continue'), exact: true }).click();
    await expectMfa(await rp3.arrival(), start3, user.id);
  });
});
