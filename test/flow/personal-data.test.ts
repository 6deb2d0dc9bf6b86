// Issue 19, part 2: "Download my data" and "Delete my account" on the account pages (GDPR articles
// 15, 17 and 20), with a real Nyckel, a real relying party and the hosted pages.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import * as oidc from 'openid-client';
import { pseudonymOf } from '../../src/accounts/pseudonymise.ts';
import { FormBrowser, textOf, type Page } from '../support/browser.ts';
import { codeIn, latestMail } from '../support/mail.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { codeAt, secretIn } from '../support/otp.ts';
import { rowsNaming, secretsIn } from '../support/personal-data.ts';
import { relyingParty, signInWithPassword as rpSignIn, startAuthorization } from '../support/relying-party.ts';

let nyckel: TestNyckel;
let counter = 0;
const callbackStop = (url: URL) => url.port === '4000';
const url = (path: string) => new URL(path, nyckel.url).toString();

beforeAll(async () => {
  nyckel = await startTestNyckel({ env: { NYCKEL_CODE_RESEND_COOLDOWN: '0', NYCKEL_ACCOUNT_DELETION_GRACE_DAYS: '14' } });
});
afterAll(() => nyckel?.stop());

/** Every string in a JSON value (the factor data an export must not show). */
function stringsOf(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(stringsOf);
  if (value && typeof value === 'object') return Object.values(value).flatMap(stringsOf);
  return [];
}

/**
 * A user with one of everything: a password, a relying party's grant and refresh token (with consent),
 * an authenticator app with recovery codes, a contact address proven by a mailed code, a number, a
 * passkey and a remembered browser; signed in to the account pages in `browser`.
 */
async function seededUser() {
  const n = ++counter;
  const email = `gdpr${n}@example.test`;
  const names = { email, username: `gdpr-person-${n}`, contact: `gdpr-home${n}@example.test`, phone: `+4670123450${n}` };
  const user = await nyckel.accounts.create({ email, username: names.username, name: `Gdpr Person ${n}`, password: TEST_PASSWORD, locale: 'en' });
  const { prisma } = nyckel.db;
  // No second factor yet: the relying party and the account pages take the password alone.
  await prisma.userEmail.updateMany({ where: { userId: user.id }, data: { verifiedAt: null } });
  const config = await relyingParty(nyckel.url, 'web', 'web-secret-web-secret-0001');
  const rpBrowser = new FormBrowser(callbackStop);
  const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/cb', scope: 'openid email offline_access', prompt: 'consent' });
  const { callback } = await rpSignIn(rpBrowser, start, { email, password: TEST_PASSWORD });
  const tokens = await oidc.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: start.verifier,
    expectedState: start.state,
    expectedNonce: start.nonce,
  });

  const browser = new FormBrowser(callbackStop);
  let page = await browser.go(url('/account'));
  page = await browser.submit(page, '/login', { email, password: TEST_PASSWORD });
  expect(new URL(page.url).pathname).toBe('/account');
  page = await browser.submit(page, '/account/emails', { value: names.contact });
  const emailCode = codeIn((await latestMail(prisma, names.contact)).text);
  page = await browser.submit(page, '/verify', { code: emailCode });
  const setup = await browser.submit(await browser.go(url('/account')), '/account/add/totp', {});
  const totpSecret = secretIn(setup.html);
  const done = await browser.submit(setup, '/verify', { label: 'Work phone', code: await codeAt(totpSecret, -1) });
  const recoveryCodes = /<pre class="recovery-codes"[^>]*>([\s\S]*?)<\/pre>/.exec(done.html)![1].split(/\s+/).filter(Boolean);
  expect(recoveryCodes.length).toBeGreaterThan(5);
  await nyckel.accounts.addPhone(user, names.phone, { verified: true, actor: 'test' });
  await prisma.factorEnrolment.create({
    data: {
      userId: user.id,
      type: 'passkey',
      label: 'Laptop key',
      confirmed: true,
      secret: nyckel.box.seal('passkey-test', `passkey-secret-${n}-value`),
      data: { credentialId: `credential-id-${n}-abcdef`, publicKey: `public-key-${n}-abcdef` },
    },
  });
  await prisma.rememberedBrowser.create({
    data: { userId: user.id, tokenHash: `remembered-hash-${n}-abcdef`, factor: 'totp', userAgent: 'Firefox', expiresAt: new Date(Date.now() + 86_400_000) },
  });
  // The app first at every sign-in (the contact address proven last would otherwise be primary).
  await prisma.user.update({ where: { id: user.id }, data: { methodOrder: ['totp', 'email-code', 'sms'] } });
  return { user, names, config, tokens, browser, totpSecret, recoveryCodes, emailCode };
}

describe('Download my data', () => {
  test('gives a JSON file with the profile, addresses, numbers, methods, sessions, browsers, consents and events, and no secret', async () => {
    const seeded = await seededUser();
    const { user, names, browser } = seeded;
    const response = await browser.request(url('/account/data'));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(response.headers.get('content-disposition')).toMatch(/^attachment; filename="nyckel-data-gdpr-person-\d+-\d{4}-\d{2}-\d{2}\.json"$/);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const data = JSON.parse(response.html);
    expect(data.profile).toMatchObject({ id: user.id, email: names.email, username: names.username, name: user.name, status: 'active' });
    expect(data.emails.map((e: { address: string }) => e.address).sort()).toEqual([names.email, names.contact].sort());
    expect(data.phones).toEqual([expect.objectContaining({ number: names.phone })]);
    expect(data.methods).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'totp', name: 'Work phone' }),
        expect.objectContaining({ kind: 'passkey', name: 'Laptop key' }),
        expect.objectContaining({ kind: 'recovery-code' }),
      ]),
    );
    expect(data.sessions.length).toBeGreaterThanOrEqual(2);
    expect(data.sessions.flatMap((s: { clients: string[] }) => s.clients)).toContain('web');
    expect(data.grants.map((g: { client: string }) => g.client)).toContain('web');
    expect(data.consents).toEqual([expect.objectContaining({ client: 'web', scopes: expect.arrayContaining(['openid', 'email', 'offline_access']) })]);
    expect(data.rememberedBrowsers).toEqual([expect.objectContaining({ browser: 'Firefox', method: 'totp' })]);
    const types = data.auditEvents.map((e: { type: string }) => e.type);
    expect(types).toEqual(expect.arrayContaining(['user.created', 'consent.granted', 'account.signed_in', 'account.method_added', 'user.phone_added']));

    const { prisma } = nyckel.db;
    const stored = await prisma.user.findUniqueOrThrow({ where: { id: user.id } });
    const enrolments = await prisma.factorEnrolment.findMany({ where: { userId: user.id } });
    const challenges = await prisma.factorChallenge.findMany({ where: { userId: user.id } });
    const remembered = await prisma.rememberedBrowser.findMany({ where: { userId: user.id } });
    // Every cookie but the two that hold no secret (the app being signed in to, the chosen language).
    const cookies = browser.jar.getCookiesSync(url('/account/x')).filter((cookie) => !['nyckel.client', 'nyckel.lang'].includes(cookie.key));
    expect(cookies.map((cookie) => cookie.key)).toEqual(expect.arrayContaining(['nyckel.session', 'nyckel.account']));
    const secrets: Record<string, string | undefined> = {
      password: TEST_PASSWORD,
      passwordHash: stored.passwordHash,
      totpSecret: seeded.totpSecret,
      emailCode: seeded.emailCode,
      accessToken: seeded.tokens.access_token,
      refreshToken: seeded.tokens.refresh_token,
      idToken: seeded.tokens.id_token,
      ...Object.fromEntries(seeded.recoveryCodes.map((code, i) => [`recoveryCode${i}`, code])),
      ...Object.fromEntries(cookies.map((cookie) => [`cookie ${cookie.key}`, cookie.value])),
      ...Object.fromEntries(
        enrolments.flatMap((row) => [
          [`${row.type} secret (base64)`, row.secret ? Buffer.from(row.secret).toString('base64') : undefined],
          [`${row.type} secret (hex)`, row.secret ? Buffer.from(row.secret).toString('hex') : undefined],
          ...stringsOf(row.data).map((value, i) => [`${row.type} data ${i}`, value]),
        ]),
      ),
      ...Object.fromEntries(
        challenges.flatMap((row, i) => [
          [`challenge ${i} hash`, row.secretHash ?? undefined],
          [`challenge ${i} browser`, row.browserHash ?? undefined],
        ]),
      ),
      ...Object.fromEntries(remembered.map((row, i) => [`remembered ${i}`, row.tokenHash])),
    };
    expect(Object.keys(secrets).length).toBeGreaterThan(20);
    expect(secretsIn(response.html, secrets)).toEqual([]);
    const exported = await prisma.auditEvent.findFirst({ where: { userId: user.id, type: 'user.data_exported' } });
    expect(exported).not.toBeNull();
  });

  test('signed out, the download leads to signing in; an old sign-in asks for a fresh one', async () => {
    const anonymous = await new FormBrowser().request(url('/account/data'));
    expect(anonymous.status).toBe(303);
    expect(anonymous.headers.get('location')).toBe('/account/login?return=%2Faccount%2Fdata');
    const { browser } = await seededUser();
    const later = Date.now() + 11 * 60_000;
    const spy = jest.spyOn(Date, 'now').mockImplementation(() => later);
    try {
      const stale = await browser.request(url('/account/data'));
      expect(stale.status).toBe(303);
      expect(stale.headers.get('location')).toBe('/account/login?return=%2Faccount%2Fdata&fresh=1');
    } finally {
      spy.mockRestore();
    }
  });
});

/** Signs in again (max_age=0): the password and the app, as the second factor. */
async function signInAgain(browser: FormBrowser, location: string, email: string, totpSecret: string, step: number): Promise<Page> {
  let page = await browser.go(url(location));
  expect(page.url).toMatch(/\/interaction\//);
  page = await browser.submit(page, '/login', { email, password: TEST_PASSWORD });
  expect(page.url).toMatch(/\/mfa\/totp(\?send=1)?$/);
  return browser.submit(page, '/verify', { code: await codeAt(totpSecret, step) });
}

describe('Delete my account', () => {
  test('asks for a fresh sign-in with the second factor, says what happens, closes the account, mails the user, and the sweep erases every trace', async () => {
    const { user, names, config, tokens, browser, totpSecret } = await seededUser();
    const { prisma } = nyckel.db;
    const later = Date.now() + 11 * 60_000;
    const spy = jest.spyOn(Date, 'now').mockImplementation(() => later);
    let location: string;
    try {
      const stale = await browser.request(url('/account/delete'));
      expect(stale.status).toBe(303);
      location = stale.headers.get('location')!;
      expect(location).toBe('/account/login?return=%2Faccount%2Fdelete&fresh=1');
      const login = await browser.request(url(location));
      expect(new URL(login.headers.get('location')!).searchParams.get('max_age')).toBe('0');
    } finally {
      spy.mockRestore();
    }
    let page = await signInAgain(browser, location, names.email, totpSecret, 0);
    expect(new URL(page.url).pathname).toBe('/account/delete');
    expect(textOf(page.html)).toContain('happens in 14 days');
    expect(textOf(page.html)).toContain('keeps the security log of your account only without your name');

    const unconfirmed = await browser.submit(page, '/account/delete', {});
    expect(unconfirmed.status).toBe(400);
    expect(textOf(unconfirmed.html)).toContain('Tick the box to confirm');
    expect((await browser.submit(page, '/account/delete', { confirm: 'yes'.repeat(200) })).status).toBe(400);
    expect((await browser.submit(page, '/account/delete', { confirm: 'yes', _csrf: 'forged' })).status).toBe(403);
    expect((await prisma.user.findUniqueOrThrow({ where: { id: user.id } })).status).toBe('active');

    page = await browser.submit(page, '/account/delete', { confirm: 'yes' });
    expect(page.status).toBe(200);
    expect(textOf(page.html)).toContain(
      'Your account is closed and will be deleted in 14 days. To keep the account, contact your administrator before then. We have sent you a mail about it.',
    );
    const closed = await prisma.user.findUniqueOrThrow({ where: { id: user.id } });
    expect(closed.status).toBe('disabled');
    expect(Math.abs(closed.deletionDueAt!.getTime() - (Date.now() + 14 * 86_400_000))).toBeLessThan(60_000);
    expect(await prisma.oidcModel.count({ where: { payload: { path: ['accountId'], equals: user.id } } })).toBe(0);
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect((await browser.request(url('/account'))).status).toBe(303);
    const mail = await latestMail(prisma, names.email);
    expect(mail.text).toContain(`You asked to delete your account ${names.username}`);
    expect(mail.text).toContain('enabling the account again cancels the deletion');

    // The sweep leaves it alone until the grace period ends.
    await nyckel.sweep();
    expect(await prisma.user.count({ where: { id: user.id } })).toBe(1);
    await prisma.user.update({ where: { id: user.id }, data: { deletionDueAt: new Date(Date.now() - 1000) } });
    await nyckel.sweep();
    expect(await prisma.user.count({ where: { id: user.id } })).toBe(0);
    expect(await rowsNaming(prisma, [user.id, names.email, names.username, names.contact, names.phone, user.name!], nyckel.redis?.prefix)).toEqual([]);

    const subject = pseudonymOf(nyckel.box, user.id);
    const erased = await prisma.auditEvent.findFirstOrThrow({ where: { type: 'user.erased', data: { path: ['subject'], equals: subject } } });
    expect(erased.data).toMatchObject({ actor: 'user', reason: expect.stringContaining('grace period ended') });
    const kept = await prisma.auditEvent.findMany({ where: { data: { path: ['subject'], equals: subject } } });
    expect(kept.map((event) => event.type)).toEqual(expect.arrayContaining(['user.created', 'account.signed_in', 'user.deletion_scheduled', 'user.erased']));
    expect(kept.every((event) => event.userId === null && event.ip === null && event.userAgent === null)).toBe(true);
  });

  test('an operator enabling the account again cancels the deletion', async () => {
    const { user, names, browser, totpSecret } = await seededUser();
    const { prisma } = nyckel.db;
    let page = await browser.go(url('/account/delete'));
    if (new URL(page.url).pathname !== '/account/delete') page = await signInAgain(browser, '/account/delete', names.email, totpSecret, 0);
    await browser.submit(page, '/account/delete', { confirm: 'yes' });
    expect((await prisma.user.findUniqueOrThrow({ where: { id: user.id } })).deletionDueAt).not.toBeNull();
    await nyckel.accounts.setStatus((await nyckel.accounts.findById(user.id))!, 'active', { actor: 'cli' });
    const enabled = await prisma.user.findUniqueOrThrow({ where: { id: user.id } });
    expect(enabled).toMatchObject({ status: 'active', deletionDueAt: null });
    await nyckel.sweep();
    expect(await prisma.user.count({ where: { id: user.id } })).toBe(1);
    const event = await prisma.auditEvent.findFirstOrThrow({ where: { userId: user.id, type: 'user.enabled' } });
    expect(event.data).toMatchObject({ deletionCancelled: true });
  });
});

describe('Delete my account with no grace period (NYCKEL_ACCOUNT_DELETION_GRACE_DAYS=0)', () => {
  let instant: TestNyckel;
  beforeAll(async () => {
    instant = await startTestNyckel({ env: { NYCKEL_ACCOUNT_DELETION_GRACE_DAYS: '0' } });
  });
  afterAll(() => instant?.stop());

  test('erases the account at once, leaving nothing that names the user', async () => {
    const email = 'instant-delete@example.test';
    const user = await instant.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
    await instant.db.prisma.userEmail.updateMany({ where: { userId: user.id }, data: { verifiedAt: null } });
    const browser = new FormBrowser(callbackStop);
    let page = await browser.go(new URL('/account/delete', instant.url).toString());
    page = await browser.submit(page, '/login', { email, password: TEST_PASSWORD });
    expect(new URL(page.url).pathname).toBe('/account/delete');
    expect(textOf(page.html)).toContain('happens at once and cannot be undone');
    page = await browser.submit(page, '/account/delete', { confirm: 'yes' });
    expect(page.status).toBe(200);
    expect(textOf(page.html)).toContain('Your account and what was kept about you are deleted');
    expect(await instant.db.prisma.user.count({ where: { id: user.id } })).toBe(0);
    expect(await rowsNaming(instant.db.prisma, [user.id, email], instant.redis?.prefix)).toEqual([]);
    const erased = await instant.db.prisma.auditEvent.findFirstOrThrow({ where: { type: 'user.erased' } });
    expect(erased).toMatchObject({ ip: null, userAgent: null, data: expect.objectContaining({ actor: 'user', subject: pseudonymOf(instant.box, user.id) }) });
  });
});
