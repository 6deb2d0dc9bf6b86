// Passkeys in a real Chromium with the DevTools protocol's virtual authenticator (CTAP2, built in,
// resident keys, user verification): set up during sign-in by a user with no second factor, then used
// as the second factor in a new browser; a credential removed from the account or from the
// authenticator is refused with a message; garbage answers are 4xx; an assertion works once.
// openid-client is the relying party and redeems the code.
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import type { BrowserContext, CDPSession, Page } from 'playwright-core';
import { Chromium, interceptRelyingParty, seriousAxeViolations } from '../support/chromium.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { messages } from '../support/messages.ts';
import { relyingParty, startAuthorization, type AuthorizationStart } from '../support/relying-party.ts';

const msg = messages('sv');

const APP = { id: 'keys', redirectUri: 'http://localhost:4000/keys-cb' };
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

interface Authenticator {
  cdp: CDPSession;
  authenticatorId: string;
}

/** A platform authenticator with a fingerprint reader that always recognises the user. */
async function virtualAuthenticator(page: Page): Promise<Authenticator> {
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

async function credentialsOf(authenticator: Authenticator) {
  const { credentials } = await authenticator.cdp.send('WebAuthn.getCredentials', { authenticatorId: authenticator.authenticatorId });
  return credentials;
}

async function signInWithPassword(page: Page, email: string): Promise<AuthorizationStart> {
  const start = await startAuthorization(rpConfig, { redirect_uri: APP.redirectUri, scope: 'openid email', ui_locales: 'sv' });
  await page.goto(start.url.toString());
  await page.getByLabel(msg('login.name_label.username_or_email'), { exact: true }).fill(email);
  await page.getByLabel(msg('login.password_label'), { exact: true }).fill(TEST_PASSWORD);
  await page.getByRole('button', { name: msg('login.submit'), exact: true }).click();
  return start;
}

async function idTokenClaims(callback: URL, start: AuthorizationStart) {
  const tokens = await oidc.authorizationCodeGrant(rpConfig, callback, {
    pkceCodeVerifier: start.verifier,
    expectedState: start.state,
    expectedNonce: start.nonce,
  });
  return tokens.claims()!;
}

const heading = (page: Page, name: string) => page.getByRole('heading', { level: 1, name, exact: true });

/** A user whose only address is unverified: no second factor yet, so the sign-in leads to enrolment. */
async function newUser(email: string) {
  const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD }, { actor: 'test' });
  await nyckel.db.prisma.userEmail.updateMany({ where: { userId: user.id }, data: { verifiedAt: null } });
  return user;
}

/** Signs in and registers a passkey on `page`'s authenticator; returns the authenticator. */
async function enrolPasskey(context: BrowserContext, email: string, name: string) {
  const page = await context.newPage();
  const authenticator = await virtualAuthenticator(page);
  const rp = await interceptRelyingParty(page);
  const start = await signInWithPassword(page, email);
  await heading(page, msg('mfa.enrol_title')).waitFor();
  await page.getByRole('button', { name: msg('factors.passkey.enrol_start'), exact: true }).click();
  await heading(page, msg('factors.passkey.enrol_title')).waitFor();
  expect(await seriousAxeViolations(page)).toEqual([]);
  await page.getByLabel(msg('factors.passkey.label_label'), { exact: true }).fill(name);
  await page.getByRole('button', { name: msg('factors.passkey.enrol_confirm'), exact: true }).click();
  // A passkey can be lost with its device: the recovery codes come with it.
  await heading(page, msg('recovery.title')).waitFor();
  await page.getByRole('button', { name: msg('recovery.continue'), exact: true }).click();
  return { page, authenticator, start, callback: await rp.arrival() };
}

/** The passkeys of the first browser, on a new browser's authenticator (the same phone, another day). */
async function browserWithPasskeys(credentials: Awaited<ReturnType<typeof credentialsOf>>) {
  const context = await chromium.newContext();
  const page = await context.newPage();
  const authenticator = await virtualAuthenticator(page);
  for (const credential of credentials) {
    await authenticator.cdp.send('WebAuthn.addCredential', { authenticatorId: authenticator.authenticatorId, credential });
  }
  return { context, page, authenticator, rp: await interceptRelyingParty(page) };
}

describe('passkeys in Chromium', () => {
  test('set up during sign-in by a user with no second factor, then the second factor of a new sign-in (acr mfa, amr hwk + user)', async () => {
    const email = 'karin@keys.example';
    const user = await newUser(email);

    const first = await enrolPasskey(await chromium.newContext(), email, 'Min bärbara');
    expect(await idTokenClaims(first.callback, first.start)).toMatchObject({ sub: user.id, acr: 'urn:nyckel:acr:mfa', amr: ['pwd', 'hwk', 'user', 'mfa'] });
    const [credential] = await credentialsOf(first.authenticator);
    expect(credential).toMatchObject({ isResidentCredential: true, rpId: 'localhost' });
    const stored = await nyckel.db.prisma.factorEnrolment.findFirstOrThrow({ where: { userId: user.id, type: 'passkey' } });
    expect(stored).toMatchObject({ label: 'Min bärbara', confirmed: true });
    expect(stored.data).toMatchObject({
      credentialId: credential.credentialId.replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_'),
      deviceType: 'singleDevice',
      backedUp: false,
      transports: ['internal'],
    });

    const second = await browserWithPasskeys([credential]);
    const start = await signInWithPassword(second.page, email);
    // The only method of this client the user has: straight to it.
    await heading(second.page, msg('factors.passkey.name')).waitFor();
    expect(await seriousAxeViolations(second.page)).toEqual([]);
    await second.page.getByRole('button', { name: msg('factors.passkey.use'), exact: true }).click();
    expect(await idTokenClaims(await second.rp.arrival(), start)).toMatchObject({
      sub: user.id,
      acr: 'urn:nyckel:acr:mfa',
      amr: ['pwd', 'hwk', 'user', 'mfa'],
    });

    const used = await nyckel.db.prisma.factorEnrolment.findFirstOrThrow({ where: { id: stored.id } });
    expect((used.data as { counter: number }).counter).toBeGreaterThan((stored.data as { counter: number }).counter);
    expect(used.lastUsedAt!.getTime()).toBeGreaterThan(stored.lastUsedAt!.getTime());
    const verified = await nyckel.db.prisma.auditEvent.findMany({ where: { userId: user.id, type: { in: ['factor.enrolled', 'factor.verified'] } } });
    expect(verified.map((e) => [e.type, (e.data as { factor: string }).factor])).toEqual(
      expect.arrayContaining([
        ['factor.enrolled', 'passkey'],
        ['factor.verified', 'passkey'],
      ]),
    );
  });

  test('a passkey gone from the authenticator leaves the page usable; one removed from the account is refused with a message (401)', async () => {
    const email = 'olle@keys.example';
    const user = await newUser(email);
    const first = await enrolPasskey(await chromium.newContext(), email, 'Olles nyckel');
    const [credential] = await credentialsOf(first.authenticator);
    const kept = await nyckel.db.prisma.factorEnrolment.findFirstOrThrow({ where: { userId: user.id, type: 'passkey' } });
    // A second passkey (a security key elsewhere) keeps the method on the account.
    await nyckel.db.prisma.factorEnrolment.create({
      data: {
        userId: user.id,
        type: 'passkey',
        label: 'Other key',
        confirmed: true,
        data: { ...(kept.data as object), credentialId: 'b3RoZXIta2V5LWlk', counter: 0 },
      },
    });

    const second = await browserWithPasskeys([credential]);
    await signInWithPassword(second.page, email);
    await heading(second.page, msg('factors.passkey.name')).waitFor();
    const posts: string[] = [];
    second.page.on('request', (r) => r.method() === 'POST' && posts.push(r.url()));
    const use = second.page.getByRole('button', { name: msg('factors.passkey.use'), exact: true });

    // Not on this authenticator (deleted on the phone): the browser has nothing to offer; nothing is posted.
    const { authenticatorId } = second.authenticator;
    await second.authenticator.cdp.send('WebAuthn.removeCredential', { authenticatorId, credentialId: credential.credentialId });
    await use.click();
    await second.page
      .locator('[data-passkey-message]')
      .filter({ hasText: msg('factors.passkey.ceremony_failed') })
      .waitFor();
    expect(posts).toEqual([]);
    expect(await use.isEnabled()).toBe(true);

    // Back on the authenticator, but removed from the account (on the account pages) while the page was open.
    await second.authenticator.cdp.send('WebAuthn.addCredential', { authenticatorId, credential });
    await nyckel.db.prisma.factorEnrolment.delete({ where: { id: kept.id } });
    const refused = second.page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/verify'));
    await use.click();
    expect((await refused).status()).toBe(401);
    await second.page
      .getByRole('alert')
      .filter({ hasText: msg('factor_errors.passkey_wrong_code', { left: 4 }) })
      .waitFor();
    expect(await seriousAxeViolations(second.page)).toEqual([]);
    expect(second.rp.visited).toEqual([]);
  });

  test('without JavaScript the page says passkeys need it and offers the other methods', async () => {
    const email = 'nils@keys.example';
    const user = await newUser(email);
    await enrolPasskey(await chromium.newContext(), email, 'Nils nyckel');
    await nyckel.db.prisma.userEmail.updateMany({ where: { userId: user.id }, data: { verifiedAt: new Date() } });
    const context = await chromium.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await signInWithPassword(page, email);
    // The primary method, the passkey, at once: its page says it needs JavaScript.
    await heading(page, msg('factors.passkey.name')).waitFor();
    expect(
      await page
        .getByRole('alert')
        .filter({ hasText: msg('factors.passkey.needs_javascript') })
        .isVisible(),
    ).toBe(true);
    await page.getByRole('link', { name: msg('mfa.other_method'), exact: true }).click();
    await page.getByRole('link', { name: new RegExp(msg('factors.email-code.name')) }).waitFor();
  });

  test('no password: "Sign in with a passkey" on the login page, a discoverable credential, user verified (acr mfa)', async () => {
    const email = 'eva@keys.example';
    const user = await newUser(email);
    const first = await enrolPasskey(await chromium.newContext(), email, 'Evas telefon');
    const second = await browserWithPasskeys(await credentialsOf(first.authenticator));
    const start = await startAuthorization(rpConfig, { redirect_uri: APP.redirectUri, scope: 'openid email', ui_locales: 'sv' });
    await second.page.goto(start.url.toString());
    await second.page.getByRole('link', { name: msg('factors.passkey.passwordless_link'), exact: true }).click();
    await heading(second.page, msg('factors.passkey.passwordless_title')).waitFor();
    expect(await seriousAxeViolations(second.page)).toEqual([]);
    await second.page.getByRole('button', { name: msg('factors.passkey.use'), exact: true }).click();
    expect(await idTokenClaims(await second.rp.arrival(), start)).toMatchObject({ sub: user.id, acr: 'urn:nyckel:acr:mfa', amr: ['hwk', 'user', 'mfa'] });
  });

  test('garbage answers are 4xx, and one assertion works once even when posted twice at the same time', async () => {
    const email = 'stina@keys.example';
    const user = await newUser(email);
    const first = await enrolPasskey(await chromium.newContext(), email, 'Stinas nyckel');
    const [credential] = await credentialsOf(first.authenticator);
    const second = await browserWithPasskeys([credential]);
    await signInWithPassword(second.page, email);
    await heading(second.page, msg('factors.passkey.name')).waitFor();

    const form = second.page.locator('form[data-passkey="authenticate"]');
    const action = new URL((await form.getAttribute('action'))!, nyckel.url).toString();
    const csrf = (await form.locator('input[name="_csrf"]').getAttribute('value'))!;
    const post = (credentialField: string) =>
      second.context.request.post(action, { form: { _csrf: csrf, credential: credentialField }, maxRedirects: 0, failOnStatusCode: false });

    const notJson = await post('{not json');
    expect(notJson.status()).toBe(400);
    expect(await notJson.text()).toContain(msg('factor_errors.passkey_format'));
    // Each refusal shows a new challenge (the one posted to is closed): all 4xx, none a 500.
    for (const garbage of [
      '',
      JSON.stringify({ id: 'x', rawId: 'x', type: 'public-key', response: {} }),
      JSON.stringify([1, 2, 3]),
      'null',
      'x'.repeat(40_000),
    ]) {
      const status = (await post(garbage)).status();
      expect([garbage.slice(0, 40), status >= 400 && status < 500]).toEqual([garbage.slice(0, 40), true]);
    }

    // Garbage renders a new challenge each time: the page's current form is the one to answer.
    await second.page.reload();
    await heading(second.page, msg('factors.passkey.name')).waitFor();
    // The browser's answer is caught on its way and posted twice at once instead.
    await second.page.route('**/verify', (route) => route.abort());
    const caught = second.page.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith('/verify'));
    await second.page.getByRole('button', { name: msg('factors.passkey.use'), exact: true }).click();
    const request = await caught;
    const fields = Object.fromEntries(new URLSearchParams(request.postData()!));
    expect(JSON.parse(fields.credential)).toMatchObject({ type: 'public-key', response: { userHandle: expect.any(String) } });
    const replayAction = request.url();
    const verifiedCount = () => nyckel.db.prisma.auditEvent.count({ where: { userId: user.id, type: 'factor.verified' } });
    const verifiedBefore = await verifiedCount();
    const both = await Promise.all([0, 1].map(() => second.context.request.post(replayAction, { form: fields, maxRedirects: 0, failOnStatusCode: false })));
    const statuses = both.map((r) => r.status()).sort();
    expect(statuses[0]).toBe(303);
    // The other is "already used", or, once the first has ended the sign-in, continues it.
    const other = both.find((r) => r.status() !== 303) ?? both[1];
    expect(other.status() === 303 ? /\/auth\//.test(other.headers().location) : other.status() >= 400 && other.status() < 500).toBe(true);
    // Once the sign-in has ended, the same answer again only continues it (nothing is verified again).
    const again = await second.context.request.post(replayAction, { form: fields, maxRedirects: 0, failOnStatusCode: false });
    expect(again.status()).toBe(303);
    expect(again.headers().location).toMatch(/\/auth\//);
    expect(await verifiedCount()).toBe(verifiedBefore + 1);
    const failures = await nyckel.db.prisma.auditEvent.count({ where: { userId: user.id, type: 'factor.failed' } });
    expect(failures).toBeGreaterThan(0);
  });
});
