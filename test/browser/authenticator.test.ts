// Nyckel Authenticator (the web app at /authenticator) in a real Chromium: one browser context is the
// computer (account pages, sign-in page), another the phone (the app opened by the QR code's link).
//
// What this covers: registration through the link with a PIN (trivial PIN refused by the app), the
// device key and QR secret made and kept by WebCrypto/IndexedDB in the browser, the service worker
// registered with the app's scope, a push event handed to that service worker (through the DevTools
// protocol, with the payload Nyckel sent) showing the request in the app, the app listing a pending
// request (its signed fetch of /authenticator/api/pending), number matching, PIN and approval by the
// app, the sign-in page (push.js)
// continuing by itself, approval with the phone's fingerprint or face (Chromium's virtual platform
// authenticator), and the offline QR code computed by the app (with the PIN) with the phone offline.
// What it does not cover: delivery through a real push service and its encryption (none is reachable
// from here; Chromium's subscription fails and the app registers without one). The Web Push path (VAPID, aes128gcm) is
// covered by test/push/push.test.ts with the device simulator and the fake push service.
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import type { Page } from 'playwright-core';
import { Chromium, interceptRelyingParty, seriousAxeViolations } from '../support/chromium.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, startAuthorization, type AuthorizationStart } from '../support/relying-party.ts';

const CLIENT = { id: 'phone', redirectUri: 'http://localhost:4000/phone-cb' };
const PIN = '2580';
let nyckel: TestNyckel;
let chromium: Chromium;
let rpConfig: oidc.Configuration;

beforeAll(async () => {
  [nyckel, chromium] = await Promise.all([startTestNyckel(), Chromium.launch()]);
  rpConfig = await relyingParty(nyckel.url, CLIENT.id);
});
afterEach(() => chromium?.closeContexts());
afterAll(async () => {
  await chromium?.close();
  await nyckel?.stop();
});

async function login(page: Page, email: string) {
  await page.getByLabel('User name or email', { exact: true }).fill(email);
  await page.getByLabel('Password', { exact: true }).fill(TEST_PASSWORD);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

async function signInAtClient(page: Page, email: string): Promise<AuthorizationStart> {
  const start = await startAuthorization(rpConfig, { redirect_uri: CLIENT.redirectUri, scope: 'openid email', ui_locales: 'en' });
  await page.goto(start.url.toString());
  await login(page, email);
  return start;
}

async function claims(callback: URL, start: AuthorizationStart) {
  const tokens = await oidc.authorizationCodeGrant(rpConfig, callback, {
    pkceCodeVerifier: start.verifier,
    expectedState: start.state,
    expectedNonce: start.nonce,
  });
  return tokens.claims();
}

describe('Nyckel Authenticator in Chromium', () => {
  test('register through the QR code link with a PIN; approve a push sign-in by number and PIN; a QR code sign-in with the phone offline', async () => {
    const email = `pwa-${Date.now()}@example.test`;
    const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
    await nyckel.db.prisma.userEmail.updateMany({ where: { userId: user.id }, data: { verifiedAt: null } });

    // The computer: account pages, "Add a mobile device", a name.
    const computerContext = await chromium.newContext();
    const computer = await computerContext.newPage();
    await computer.goto(`${nyckel.url}/account`);
    await login(computer, email);
    await computer.getByRole('link', { name: 'Add a mobile device', exact: true }).click();
    await computer.getByLabel('Name of the phone', { exact: true }).fill('My work phone');
    await computer.getByRole('button', { name: 'Continue', exact: true }).click();
    const link = await computer.locator('#device-link').getAttribute('href');
    expect(link).toMatch(/\/authenticator\/#enrol=[A-Za-z0-9_-]{43}$/);

    // The phone opens the link: the app; a trivial PIN is refused by the app itself, then a good one.
    const phoneContext = await chromium.newContext();
    const phone = await phoneContext.newPage();
    const problems: string[] = [];
    phone.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    phone.on('pageerror', (error) => problems.push(error.message));
    await phone.goto(link!);
    await phone.getByRole('heading', { name: 'Register this phone' }).waitFor();
    await phone.getByLabel('Choose a PIN (at least 4 digits)').fill('1234');
    await phone.getByLabel('The PIN again').fill('1234');
    await phone.getByRole('button', { name: 'Register', exact: true }).click();
    await expect(phone.locator('#status').textContent()).resolves.toContain('not a simple series');
    await phone.getByLabel('Choose a PIN (at least 4 digits)').fill(PIN);
    await phone.getByLabel('The PIN again').fill(PIN);
    await phone.getByRole('button', { name: 'Register', exact: true }).click();
    await phone.getByText('This phone: My work phone').waitFor();
    expect(await phone.locator('#status').textContent()).toBe('This phone is registered as “My work phone”. Finish on the computer.');
    expect(new URL(phone.url()).hash).toBe('');
    const scope = await phone.evaluate(() => navigator.serviceWorker.ready.then((registration) => registration.scope));
    expect(scope).toBe(`${nyckel.url}/authenticator/`);
    const stored = await nyckel.db.prisma.factorEnrolment.findFirstOrThrow({ where: { userId: user.id, type: 'push' } });
    expect(stored).toMatchObject({ label: 'My work phone', confirmed: false });
    expect((stored.data as { subscription: unknown }).subscription).toBeNull();

    // The app's service worker, as the DevTools protocol sees it.
    const worker = await phoneContext.newCDPSession(phone);
    const registrationId = new Promise<string>((resolve) => {
      worker.on('ServiceWorker.workerRegistrationUpdated', (event) => {
        const found = event.registrations.find((r) => r.scopeURL === `${nyckel.url}/authenticator/` && !r.isDeleted);
        if (found) resolve(found.registrationId);
      });
    });
    await worker.send('ServiceWorker.enable');

    // The computer notices the registration by itself; the user finishes there.
    await computer.getByRole('button', { name: 'Finish', exact: true }).click();
    await computer.getByRole('heading', { name: 'Save your recovery codes' }).waitFor();

    // A sign-in at the client: push. The page shows the number; the app lists the request.
    const signInContext = await chromium.newContext();
    const signIn = await signInContext.newPage();
    const rp = await interceptRelyingParty(signIn);
    const start = await signInAtClient(signIn, email);
    // The primary method, push, starts at once after the password.
    await signIn.waitForURL(/\/mfa\/push\?send=1$/);
    await signIn.getByText('Open Nyckel Authenticator on your phone and pick this number').waitFor();
    const number = (await signIn.locator('#push-number').textContent())!.trim();
    expect(number).toMatch(/^\d{2}$/);
    expect(await signIn.locator('#push-countdown').textContent()).toMatch(/The request ends in \d+ seconds/);
    expect(await seriousAxeViolations(signIn)).toEqual([]);

    // No real push service is reachable: the push event is handed to the app's service worker through
    // the DevTools protocol with the payload Nyckel sent (decrypted), as a push service would deliver it.
    const row = await nyckel.db.prisma.factorChallenge.findFirstOrThrow({ where: { userId: user.id, factor: 'push' }, orderBy: { createdAt: 'desc' } });
    const sent = row.data as { client: string; time: string; browser: string; ip: string; numbers: string[] };
    const payload = {
      type: 'approval',
      challengeId: row.id,
      client: sent.client,
      time: sent.time,
      expiresAt: row.expiresAt.toISOString(),
      browser: sent.browser,
      ip: sent.ip,
      numbers: sent.numbers,
    };
    await phoneContext.grantPermissions(['notifications'], { origin: nyckel.url });
    await worker.send('ServiceWorker.deliverPushMessage', { origin: nyckel.url, registrationId: await registrationId, data: JSON.stringify(payload) });
    const request = phone.locator(`#request-${row.id}`);
    await request.waitFor();
    const notifications = await phone.evaluate(() =>
      navigator.serviceWorker.ready.then((r) => r.getNotifications()).then((list) => list.map((n) => ({ title: n.title, tag: n.tag }))),
    );
    expect(notifications).toEqual([{ title: 'Phone portal', tag: row.id }]);
    expect(await request.locator('.request-client').textContent()).toBe('Phone portal');
    expect(await request.locator('button.number').allTextContents()).toContain(number);
    await request.locator(`button.number[data-number="${number}"]`).click();
    await request.getByLabel('Your PIN').fill(PIN);
    await request.getByRole('button', { name: 'Approve', exact: true }).click();
    await request.getByText('Approved. The sign-in continues on the computer.').waitFor();
    expect(await seriousAxeViolations(phone)).toEqual([]);

    // The sign-in page continues by itself.
    const callback = await rp.arrival();
    expect(await claims(callback, start)).toMatchObject({ sub: user.id, acr: 'urn:nyckel:acr:mfa', amr: ['pwd', 'swk', 'pin', 'mfa'] });

    // Fingerprint or face instead of the PIN (the phone's platform authenticator, virtual here).
    const cdp = await phoneContext.newCDPSession(phone);
    await cdp.send('WebAuthn.enable');
    await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2',
        transport: 'internal',
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    });
    await phone.reload();
    await phone.getByText('This phone: My work phone').waitFor();
    await phone.locator('#bio-pin').fill(PIN);
    await phone.getByRole('button', { name: 'Use fingerprint or face instead of the PIN', exact: true }).click();
    await phone.getByText('Fingerprint or face is set up.').waitFor();
    const bioSignIn = await (await chromium.newContext()).newPage();
    const bioRp = await interceptRelyingParty(bioSignIn);
    const bioStart = await signInAtClient(bioSignIn, email);
    await bioSignIn.waitForURL(/\/mfa\/push\?send=1$/);
    const bioNumber = (await bioSignIn.locator('#push-number').textContent())!.trim();
    const bioChallenge = (await bioSignIn.locator('#push').getAttribute('data-done-url'))!.split('/').pop();
    await phone.getByRole('button', { name: 'Check for requests', exact: true }).click();
    const bioRequest = phone.locator(`#request-${bioChallenge}`);
    await bioRequest.locator(`button.number[data-number="${bioNumber}"]`).click();
    await bioRequest.getByRole('button', { name: 'Approve with fingerprint or face', exact: true }).click();
    await bioRequest.getByText('Approved. The sign-in continues on the computer.').waitFor();
    expect(await claims(await bioRp.arrival(), bioStart)).toMatchObject({ sub: user.id, amr: ['pwd', 'swk', 'user', 'mfa'] });

    // A QR code sign-in: the phone is offline; the text of the QR code is pasted into the app.
    const qrSignIn = await (await chromium.newContext()).newPage();
    const qrRp = await interceptRelyingParty(qrSignIn);
    const qrStart = await signInAtClient(qrSignIn, email);
    // The push page comes first (the primary); "Use another method" lists the QR code.
    await qrSignIn.waitForURL(/\/mfa\/push\?send=1$/);
    await qrSignIn.getByRole('link', { name: 'Use another method', exact: true }).click();
    await qrSignIn.getByRole('link', { name: 'Nyckel Authenticator (QR code)' }).click();
    const text = (await qrSignIn.locator('#app-qr-text').textContent())!;
    await phoneContext.setOffline(true);
    await phone.getByRole('link', { name: 'QR code', exact: true }).click();
    await phone.getByLabel('QR code text').fill(text);
    // The PIN is asked for before any code is shown (it is part of the code).
    await phone.getByRole('button', { name: 'Show code', exact: true }).click();
    expect(await phone.locator('#status').textContent()).toBe('Type your PIN to see the code.');
    expect(await phone.locator('#qr-result').isHidden()).toBe(true);
    await phone.getByLabel('Your PIN (the code is made with it)').fill(PIN);
    await phone.getByRole('button', { name: 'Show code', exact: true }).click();
    // The PIN key is derived first (PBKDF2 on the phone), so the code appears a moment later.
    await phone.locator('#qr-code').filter({ hasText: /\d/ }).waitFor();
    const code = (await phone.locator('#qr-code').textContent())!.replace(/\s/g, '');
    expect(code).toMatch(/^\d{8}$/);
    expect(await phone.locator('#qr-client').textContent()).toBe('Code for Phone portal:');
    await qrSignIn.getByLabel('Code', { exact: true }).fill(code);
    await qrSignIn.getByRole('button', { name: 'Sign in', exact: true }).click();
    expect(await claims(await qrRp.arrival(), qrStart)).toMatchObject({ sub: user.id, amr: ['pwd', 'otp', 'swk', 'mfa'] });

    expect(problems.filter((p) => !/push|notification|permission|Failed to load resource/i.test(p))).toEqual([]);
  });
});
