import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { hash as argon2Hash, type Algorithm } from '@node-rs/argon2';
import { hash as bcryptHash } from '@node-rs/bcrypt';
import * as oidc from 'openid-client';
import { keycloakRealmRows } from '../../src/accounts/import-keycloak.ts';
import { importUsers, parseImportFile, type ImportRow } from '../../src/accounts/import.ts';
import { sealTotpSecret } from '../../src/factors/totp/index.ts';
import { totpCode } from '../../src/factors/totp/otp.ts';
import { base32Encode } from '../../src/accounts/import-totp.ts';
import { FormBrowser } from '../support/browser.ts';
import { startTestNyckel, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, signInWithPassword, startAuthorization } from '../support/relying-party.ts';

/**
 * Users imported with the hashes another system keeps sign in with their own passwords through a
 * real relying party (openid-client), and their hash becomes Nyckel's argon2id on the way.
 */
let nyckel: TestNyckel;
let spa: oidc.Configuration;
const callbackStop = (url: URL) => url.port === '4000';
const PASSWORD = 'a brand new lighthouse keeper';
let counter = 0;

beforeAll(async () => {
  nyckel = await startTestNyckel({ env: { NYCKEL_LOGIN_FAILURES_PER_ACCOUNT: '3', NYCKEL_LOGIN_FAILURES_PER_IP: '100' } });
  spa = await relyingParty(nyckel.url, 'spa');
});
afterAll(() => nyckel?.stop());

const b64 = (bytes: Buffer) => bytes.toString('base64').replace(/=+$/, '');
const ab64 = (bytes: Buffer) => b64(bytes).replace(/\+/g, '.');
const salt = () => crypto.randomBytes(16);

/** Each format as the other system writes it, made here from PASSWORD. */
const hashers: Record<string, () => Promise<unknown>> = {
  'argon2i (PHC)': () => argon2Hash(PASSWORD, { algorithm: 1 as Algorithm, memoryCost: 8192, timeCost: 2, parallelism: 1 }),
  'bcrypt $2b$': () => bcryptHash(PASSWORD, 8),
  'bcrypt $2y$ (PHP)': async () => (await bcryptHash(PASSWORD, 8)).replace(/^\$2b\$/, '$2y$'),
  'bcrypt $2a$': async () => (await bcryptHash(PASSWORD, 8)).replace(/^\$2b\$/, '$2a$'),
  'scrypt (PHC)': async () => {
    const s = salt();
    return `$scrypt$ln=14,r=8,p=1$${b64(s)}$${b64(crypto.scryptSync(PASSWORD, s, 32, { N: 2 ** 14, r: 8, p: 1 }))}`;
  },
  'passlib pbkdf2-sha256': async () => {
    const s = salt();
    return `$pbkdf2-sha256$29000$${ab64(s)}$${ab64(crypto.pbkdf2Sync(PASSWORD, s, 29000, 32, 'sha256'))}`;
  },
  'passlib pbkdf2-sha512': async () => {
    const s = salt();
    return `$pbkdf2-sha512$25000$${ab64(s)}$${ab64(crypto.pbkdf2Sync(PASSWORD, s, 25000, 64, 'sha512'))}`;
  },
  'Django pbkdf2_sha256': async () => {
    const s = 'Zq3xY8wV1pLk0sNa';
    return `pbkdf2_sha256$100000$${s}$${crypto.pbkdf2Sync(PASSWORD, s, 100000, 32, 'sha256').toString('base64')}`;
  },
  'Keycloak pbkdf2-sha256 (JSON text, as in a CSV cell)': async () => {
    const s = salt();
    const value = crypto.pbkdf2Sync(PASSWORD, s, 27500, 64, 'sha256').toString('base64');
    return JSON.stringify({
      secretData: JSON.stringify({ value, salt: s.toString('base64') }),
      credentialData: JSON.stringify({ hashIterations: 27500, algorithm: 'pbkdf2-sha256' }),
    });
  },
  'Keycloak pbkdf2 (SHA-1, objects)': async () => {
    const s = salt();
    const value = crypto.pbkdf2Sync(PASSWORD, s, 20000, 64, 'sha1').toString('base64');
    return { secretData: { value, salt: s.toString('base64') }, credentialData: { hashIterations: 20000, algorithm: 'pbkdf2' } };
  },
};

async function importJson(users: Array<Record<string, unknown>>, options: { allowWeakHashes?: boolean } = {}) {
  const rows = parseImportFile(JSON.stringify(users, null, 1), 'users.json');
  return importUsers(nyckel.db.prisma, nyckel.accounts, nyckel.audit, rows, { actor: 'test', sealTotpSecret: sealTotpSecret(nyckel.box), ...options });
}

async function signIn(email: string, password: string) {
  const start = await startAuthorization(spa, { redirect_uri: 'http://localhost:4000/spa-cb' });
  const { callback } = await signInWithPassword(new FormBrowser(callbackStop), start, { email, password });
  return oidc.authorizationCodeGrant(spa, callback, { pkceCodeVerifier: start.verifier, expectedState: start.state, expectedNonce: start.nonce });
}

async function passwordAttempt(email: string, password: string) {
  const browser = new FormBrowser(callbackStop);
  const start = await startAuthorization(spa, { redirect_uri: 'http://localhost:4000/spa-cb' });
  return browser.submit(await browser.go(start.url.toString()), '/login', { email, password });
}

const storedHash = async (email: string) => (await nyckel.db.prisma.user.findUniqueOrThrow({ where: { email } })).passwordHash;
const rehashes = (userId: string) => nyckel.db.prisma.auditEvent.findMany({ where: { type: 'user.password_rehashed', userId } });

describe('imported password hashes', () => {
  test.each(Object.keys(hashers))('%s: signs in with the password, and the hash is argon2id afterwards', async (kind) => {
    const email = `hashed${++counter}@import.example`;
    const imported = await hashers[kind]();
    const report = await importJson([{ email, password_hash: imported }]);
    expect(report).toMatchObject({ created: 1, invalid: 0 });
    const before = await storedHash(email);
    expect(before).not.toMatch(/^\$argon2id\$/);

    const tokens = await signIn(email, PASSWORD);
    expect(tokens.claims()).toMatchObject({ sub: expect.any(String) });

    const after = await storedHash(email);
    expect(after).toMatch(/^\$argon2id\$v=19\$m=8192,t=1,p=1\$/);
    const user = await nyckel.accounts.findByEmail(email);
    expect(await rehashes(user!.id)).toHaveLength(1);
    // The new hash is Nyckel's: the password still works, a wrong one does not.
    expect(await nyckel.accounts.verifyPassword(email, PASSWORD)).toMatchObject({ id: user!.id });
    expect(await nyckel.accounts.verifyPassword(email, `${PASSWORD}!`)).toBeNull();
    expect(await rehashes(user!.id)).toHaveLength(1);
  });

  test('an imported argon2id hash is kept as it is (already argon2id), and signs in', async () => {
    const email = `hashed${++counter}@import.example`;
    const imported = await argon2Hash(PASSWORD, { algorithm: 2 as Algorithm, memoryCost: 16384, timeCost: 2, parallelism: 1 });
    await importJson([{ email, password_hash: imported }]);
    await signIn(email, PASSWORD);
    expect(await storedHash(email)).toBe(imported);
  });

  test('an imported argon2 hash of a password whose NFKC form differs (the old system hashed it as typed) matches', async () => {
    const email = `typed${++counter}@import.example`;
    const typed = 'ｆｕｌｌｗｉｄｔｈ harbour lantern';
    expect(typed.normalize('NFKC')).not.toBe(typed);
    await importJson([{ email, password_hash: await argon2Hash(typed, { algorithm: 1 as Algorithm, memoryCost: 8192, timeCost: 2 }) }]);
    expect(await nyckel.accounts.verifyPassword(email, typed)).not.toBeNull();
    // Now Nyckel's argon2id of the NFKC form: the same typed password still matches.
    expect(await storedHash(email)).toMatch(/^\$argon2id\$/);
    expect(await nyckel.accounts.verifyPassword(email, typed)).not.toBeNull();
  });

  test('a wrong password against an imported hash is an ordinary failure: 401, counted, throttled; the hash stays', async () => {
    const email = `wrong${++counter}@import.example`;
    const imported = await bcryptHash(PASSWORD, 8);
    await importJson([{ email, password_hash: imported }]);
    for (let i = 0; i < 3; i++) expect((await passwordAttempt(email, `not the password ${i}`)).status).toBe(401);
    const failures = await nyckel.db.prisma.auditEvent.findMany({ where: { type: 'login.failed' } });
    expect(failures.filter((e) => (e.data as { name?: string }).name === email)).toHaveLength(3);
    // The account's failures are used up: even the right password waits.
    expect((await passwordAttempt(email, PASSWORD)).status).toBe(429);
    expect(await storedHash(email)).toBe(imported);
  });

  test('two sign-ins at once with an imported hash: one rehash is written, both succeed, the stored hash is argon2id', async () => {
    const email = `race${++counter}@import.example`;
    const s = salt();
    await importJson([{ email, password_hash: `$pbkdf2-sha256$29000$${ab64(s)}$${ab64(crypto.pbkdf2Sync(PASSWORD, s, 29000, 32, 'sha256'))}` }]);
    const tokens = await Promise.all([signIn(email, PASSWORD), signIn(email, PASSWORD)]);
    const user = await nyckel.accounts.findByEmail(email);
    for (const set of tokens) expect(set.claims()).toMatchObject({ sub: user!.id });
    expect(await rehashes(user!.id)).toHaveLength(1);
    expect(user!.passwordHash).toMatch(/^\$argon2id\$/);
    expect(await nyckel.accounts.verifyPassword(email, PASSWORD)).toMatchObject({ id: user!.id });
    expect(await rehashes(user!.id)).toHaveLength(1);

    // Both verifications certainly pass on the old hash (the user read before either writes): still one write.
    const other = `race${++counter}@import.example`;
    await importJson([{ email: other, password_hash: await bcryptHash(PASSWORD, 8) }]);
    const stale = (await nyckel.accounts.findByEmail(other))!;
    const both = await Promise.all([nyckel.accounts.passwordMatches(stale, PASSWORD), nyckel.accounts.passwordMatches(stale, PASSWORD)]);
    expect(both.map((u) => u?.id)).toEqual([stale.id, stale.id]);
    expect(await rehashes(stale.id)).toHaveLength(1);
    const stored = await storedHash(other);
    expect(stored).toMatch(/^\$argon2id\$/);
    expect(both.filter((u) => u?.passwordHash === stored)).toHaveLength(1);
  });

  test('a password changed while an old-hash sign-in is under way is not overwritten by its rehash', async () => {
    const email = `changed${++counter}@import.example`;
    await importJson([{ email, password_hash: await bcryptHash(PASSWORD, 8) }]);
    const stale = (await nyckel.accounts.findByEmail(email))!;
    await nyckel.accounts.setPassword(stale, 'the operator chose this one', { actor: 'test' });
    // The sign-in read the user before the change: its verification passes on the old hash, its write must not.
    await nyckel.accounts.passwordMatches(stale, PASSWORD);
    expect(await nyckel.accounts.verifyPassword(email, 'the operator chose this one')).not.toBeNull();
    expect(await nyckel.accounts.verifyPassword(email, PASSWORD)).toBeNull();
    expect(await rehashes(stale.id)).toHaveLength(0);
  });
});

describe('imports at once', () => {
  test('two imports of overlapping files at the same time: each user created once, the other import reports it present', async () => {
    const hash = await bcryptHash(PASSWORD, 8);
    const shared = Array.from({ length: 30 }, (_, i) => ({ email: `both${i}@import.example`, password_hash: hash }));
    const [a, b] = await Promise.all([
      importJson([...shared, { email: 'only-a@import.example', password_hash: hash }]),
      importJson([{ email: 'only-b@import.example', password_hash: hash }, ...shared]),
    ]);
    expect(a.created + b.created).toBe(32);
    expect(a.existing + b.existing).toBe(30);
    expect(a.invalid + b.invalid).toBe(0);
    expect(await nyckel.db.prisma.user.count({ where: { email: { startsWith: 'both' } } })).toBe(30);
    expect(await nyckel.db.prisma.auditEvent.count({ where: { type: 'user.created', user: { email: { startsWith: 'both' } } } })).toBe(30);
  });
});

describe('authenticator apps brought along', () => {
  test('totp_secret with 8 digits and SHA-256: enrolled, sealed, and a code from the app signs in', async () => {
    const email = `app${++counter}@import.example`;
    const secret = base32Encode(crypto.randomBytes(20));
    const bcrypt = await bcryptHash(PASSWORD, 8);
    const report = await importJson([{ email, password_hash: bcrypt, totp_secret: secret, totp_digits: 8, totp_algorithm: 'SHA256' }]);
    expect(report.created).toBe(1);
    const app = await nyckel.db.prisma.factorEnrolment.findFirstOrThrow({ where: { user: { email }, type: 'totp' } });
    expect(app).toMatchObject({ confirmed: true, data: { digits: 8, algorithm: 'sha256' } });
    expect(Buffer.from(app.secret!).toString('latin1')).not.toContain(secret);
    const code = await totpCode(secret);
    // A 6-digit SHA-1 code of the same secret is not what this app shows.
    const wrongKind = await signInWithApp(email, PASSWORD, code);
    expect(wrongKind.status).toBe(401);
    expect(wrongKind.url).not.toContain('code=');
    const eight = await import('otplib').then(({ generate }) => generate({ secret, algorithm: 'sha256', digits: 8, period: 30 }));
    expect((await signInWithApp(email, PASSWORD, eight)).url).toContain('code=');
  });
});

async function signInWithApp(email: string, password: string, code: string) {
  const config = await relyingParty(nyckel.url, 'authapp');
  const browser = new FormBrowser(callbackStop);
  const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/authapp-cb', scope: 'openid email' });
  const page = await browser.submit(await browser.go(start.url.toString()), '/login', { email, password });
  expect(page.url).toMatch(/\/mfa\/totp(\?send=1)?$/);
  const done = await browser.submit(page, '/verify', { code });
  return Object.assign(done, { config, start });
}

describe('Keycloak realm export', () => {
  const fixture = fs.readFileSync(path.join(import.meta.dirname, '../fixtures/keycloak-realm-export.json'), 'utf8');

  test('users, verified addresses, PBKDF2 passwords and OTP apps come over; what does not is listed; a second run changes nothing', async () => {
    const rows: ImportRow[] = keycloakRealmRows(fixture);
    const report = await importUsers(nyckel.db.prisma, nyckel.accounts, nyckel.audit, rows, { actor: 'test', sealTotpSecret: sealTotpSecret(nyckel.box) });
    expect(report).toMatchObject({ created: 2, existing: 0, invalid: 1 });
    expect(report.rows[2]).toMatchObject({
      status: 'invalid',
      username: 'svc bad name',
      problems: ['username: must not contain "@", spaces or control characters'],
    });
    expect(report.rows[0]).toMatchObject({ status: 'created', username: 'kari.nord' });
    expect(report.rows[0].status === 'created' && report.rows[0].notes).toEqual([
      'not imported: credential webauthn "YubiKey"',
      'not imported: attributes department',
      'not imported: requiredActions UPDATE_PROFILE',
      'not imported: realmRoles auditor',
      'not imported: clientRoles reports-app: viewer',
      'not imported: groups /finance',
      'not imported: federatedIdentities google',
    ]);

    const kari = await nyckel.db.prisma.user.findUniqueOrThrow({ where: { username: 'kari.nord' }, include: { emails: true } });
    expect(kari).toMatchObject({ email: 'kari.nord@tdc.example', name: 'Kari Nord', status: 'active', emails: [{ verifiedAt: expect.any(Date) }] });
    expect(kari.passwordHash).toMatch(/^\$pbkdf2-sha256\$27500\$/);
    // Email as username in Keycloak: Nyckel signs her in by the address; disabled stays disabled.
    const lena = await nyckel.db.prisma.user.findUniqueOrThrow({ where: { email: 'lena.berg@tdc.example' }, include: { emails: true } });
    expect(lena).toMatchObject({ username: null, status: 'disabled', emails: [{ verifiedAt: null }] });
    expect(await nyckel.accounts.verifyPassword('lena.berg@tdc.example', 'a quiet harbour at dawn')).toBeNull();

    // Keycloak's OTP secret is its raw string; the app holds the base32 of its UTF-8 bytes.
    const secret = base32Encode(Buffer.from('dW7xVp3Kq9Lm2Nz8Rt4Y', 'utf8'));
    const done = await signInWithApp('kari.nord', 'bright orange kayak paddle', await totpCode(secret));
    const tokens = await oidc.authorizationCodeGrant(done.config, new URL(done.url), {
      pkceCodeVerifier: done.start.verifier,
      expectedState: done.start.state,
      expectedNonce: done.start.nonce,
    });
    expect(tokens.claims()).toMatchObject({ sub: kari.id, amr: ['pwd', 'otp', 'mfa'] });
    expect(await storedHash('kari.nord@tdc.example')).toMatch(/^\$argon2id\$/);

    const before = await nyckel.db.prisma.user.findMany({ where: { email: { endsWith: '@tdc.example' } }, orderBy: { email: 'asc' } });
    const again = await importUsers(nyckel.db.prisma, nyckel.accounts, nyckel.audit, keycloakRealmRows(fixture), {
      actor: 'test',
      sealTotpSecret: sealTotpSecret(nyckel.box),
    });
    expect(again).toMatchObject({ created: 0, existing: 2, invalid: 1 });
    expect(await nyckel.db.prisma.user.findMany({ where: { email: { endsWith: '@tdc.example' } }, orderBy: { email: 'asc' } })).toEqual(before);
  });
});
