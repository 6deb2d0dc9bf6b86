// The passkey module against a real database, answered by a software authenticator: single use,
// binding to the user and the sign-in, expiry, counters, the amr mapping, the failure lock.
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { loadSettings } from '../../src/config/settings.ts';
import type { ChallengeContext, StartOutcome } from '../../src/factors/contract.ts';
import type { FactorDependencies } from '../../src/factors/deps.ts';
import { passkeyFactor, type PasskeyData, type PasskeyModule } from '../../src/factors/passkey/index.ts';
import { passkeyAmr, webauthnRelyingParty } from '../../src/factors/shared/relying-party.ts';
import { ChallengeStore } from '../../src/factors/shared/challenges.ts';
import { FailureLock } from '../../src/factors/shared/failure-lock.ts';
import type { User } from '../../src/generated/prisma/client.ts';
import { SoftAuthenticator } from '../support/soft-authenticator.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';

const MAX_FAILURES = 4;
let nyckel: TestNyckel;
let passkey: PasskeyModule;
let lock: FailureLock;
let origin: string;
let counter = 0;

beforeAll(async () => {
  nyckel = await startTestNyckel({ env: { NYCKEL_FACTOR_MAX_FAILURES: String(MAX_FAILURES) } });
  const { prisma } = nyckel.db;
  lock = new FailureLock({ prisma }, nyckel.settings.factors.maxFailures, nyckel.settings.factors.lockSeconds);
  // Only what the module uses: no mail, no views.
  const deps = { prisma, settings: nyckel.settings, box: nyckel.box, lock, challenges: new ChallengeStore(prisma, nyckel.box, lock) };
  passkey = passkeyFactor(deps as unknown as FactorDependencies);
  origin = new URL(nyckel.settings.issuer).origin;
});
afterAll(() => nyckel?.stop());

async function newUser(): Promise<User> {
  const user = await nyckel.accounts.create({ email: `key${++counter}@keys.example`, password: TEST_PASSWORD }, { actor: 'test' });
  return nyckel.db.prisma.user.findUniqueOrThrow({ where: { id: user.id } });
}

function signIn(user: User, uid = crypto.randomUUID()): ChallengeContext {
  return { user, uid, clientId: 'keys', clientName: 'Key portal', locale: 'en', ip: '127.0.0.1', browserHash: 'b', issuer: nyckel.settings.issuer };
}

type Started = Extract<StartOutcome, { status: 'started' }> & { browser: { challenge: string; rp?: { id: string }; rpId?: string } };
const started = (outcome: StartOutcome) => {
  expect(outcome.status).toBe('started');
  return outcome as Started;
};

/** A user with one registered passkey on `key`. */
async function enrolled(key = new SoftAuthenticator(origin), label?: string) {
  const user = await newUser();
  const ctx = signIn(user);
  const begun = started(await passkey.enrol.begin(ctx, {}));
  const outcome = await passkey.enrol.complete(ctx, { challengeId: begun.challengeId, credential: key.register(begun.browser as never), label });
  expect(outcome.status).toBe('verified');
  return { user, key, outcome };
}

async function assertion(ctx: ChallengeContext, key: SoftAuthenticator, overrides: Parameters<SoftAuthenticator['authenticate']>[1] = {}) {
  const start = started(await passkey.start(ctx, {}));
  return { challengeId: start.challengeId, credential: key.authenticate(start.browser, overrides), options: start.browser };
}

describe('relying party and amr', () => {
  test('RP ID and origins follow the issuer unless configured', () => {
    expect(webauthnRelyingParty(loadSettings({ ISSUER: 'https://login.example.se/' }))).toEqual({
      id: 'login.example.se',
      name: 'Nyckel',
      origins: ['https://login.example.se'],
    });
    const configured = loadSettings({
      ISSUER: 'https://login.example.se',
      NYCKEL_WEBAUTHN_RP_ID: 'Example.se',
      NYCKEL_WEBAUTHN_ORIGINS: 'https://login.example.se, https://konto.example.se/',
      NYCKEL_WEBAUTHN_RP_NAME: 'Exempel',
    });
    expect(webauthnRelyingParty(configured)).toEqual({ id: 'example.se', name: 'Exempel', origins: ['https://login.example.se', 'https://konto.example.se'] });
    expect(() => loadSettings({ NYCKEL_WEBAUTHN_RP_ID: 'https://example.se' })).toThrow(/NYCKEL_WEBAUTHN_RP_ID/);
    expect(() => loadSettings({ NYCKEL_WEBAUTHN_ORIGINS: 'example.se/path' })).toThrow(/NYCKEL_WEBAUTHN_ORIGINS/);
  });

  test('synced or backed-up keys are swk, device-bound ones hwk; user only with user verification', () => {
    expect(passkeyAmr({ deviceType: 'singleDevice', backedUp: false, userVerified: true })).toEqual(['hwk', 'user']);
    expect(passkeyAmr({ deviceType: 'singleDevice', backedUp: false, userVerified: false })).toEqual(['hwk']);
    expect(passkeyAmr({ deviceType: 'multiDevice', backedUp: true, userVerified: true })).toEqual(['swk', 'user']);
    expect(passkeyAmr({ deviceType: 'multiDevice', backedUp: false, userVerified: false })).toEqual(['swk']);
  });
});

describe('registering a passkey', () => {
  test('stores the credential (named, counter, flags, transports) and answers with its amr', async () => {
    const key = new SoftAuthenticator(origin, { userVerified: false, backedUp: true });
    const { user, outcome } = await enrolled(key, '  My YubiKey\u0000 ');
    expect(outcome).toEqual({ status: 'verified', amr: ['swk'], target: 'My YubiKey' });
    const row = await nyckel.db.prisma.factorEnrolment.findFirstOrThrow({ where: { userId: user.id, type: 'passkey' } });
    expect(row).toMatchObject({ label: 'My YubiKey', confirmed: true });
    expect(row.data as unknown as PasskeyData).toMatchObject({
      credentialId: key.id,
      counter: 0,
      transports: ['usb'],
      deviceType: 'multiDevice',
      backedUp: true,
      aaguid: '00000000-0000-0000-0000-000000000000',
    });
    expect(await passkey.isEnrolled(user)).toBe(true);
  });

  test('the options exclude the passkeys the user has and prefer a resident key and user verification', async () => {
    const { user, key } = await enrolled();
    const options = started(await passkey.enrol.begin(signIn(user), {})).browser as unknown as Record<string, unknown>;
    expect(options).toMatchObject({
      rp: { id: 'localhost', name: 'Nyckel' },
      excludeCredentials: [{ id: key.id, type: 'public-key' }],
      authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
      attestation: 'none',
    });
    // The user handle is opaque (16 bytes), not the address; the address is the name the browser shows.
    const person = options.user as { id: string; name: string };
    expect(Buffer.from(person.id, 'base64url')).toHaveLength(16);
    expect(person.name).toBe(user.email);
  });

  test('a credential already registered (to anyone) is refused; an unnamed one gets a name', async () => {
    const { key, user: first } = await enrolled();
    const other = await newUser();
    const ctx = signIn(other);
    const begun = started(await passkey.enrol.begin(ctx, {}));
    expect(await passkey.enrol.complete(ctx, { challengeId: begun.challengeId, credential: key.register(begun.browser as never) })).toEqual({
      status: 'failed',
      reason: 'used',
    });
    expect(await passkey.isEnrolled(other)).toBe(false);
    expect((await nyckel.db.prisma.factorEnrolment.findFirstOrThrow({ where: { userId: first.id, type: 'passkey' } })).label).toBe('Passkey 1');
  });

  test('the wrong origin and garbage are refused with nothing stored; the answer works once, only in its sign-in', async () => {
    const user = await newUser();
    const ctx = signIn(user);
    const key = new SoftAuthenticator(origin);
    const begun = started(await passkey.enrol.begin(ctx, {}));
    const answer = key.register(begun.browser as never);
    expect(
      await passkey.enrol.complete(ctx, {
        challengeId: begun.challengeId,
        credential: key.register(begun.browser as never, { origin: 'https://evil.example' }),
      }),
    ).toMatchObject({ status: 'failed', reason: 'wrong_code' });
    expect(await passkey.enrol.complete(ctx, { challengeId: begun.challengeId, credential: { nonsense: true } })).toMatchObject({
      status: 'failed',
      reason: 'wrong_code',
    });
    expect(await nyckel.db.prisma.factorEnrolment.count({ where: { userId: user.id } })).toBe(0);
    // The right answer still works, once.
    expect(await passkey.enrol.complete(ctx, { challengeId: begun.challengeId, credential: answer })).toMatchObject({
      status: 'verified',
      amr: ['hwk', 'user'],
    });
    expect(await passkey.enrol.complete(ctx, { challengeId: begun.challengeId, credential: answer })).toEqual({ status: 'failed', reason: 'used' });
    // Not in another sign-in, nor under another challenge id.
    expect(await passkey.enrol.complete(signIn(user), { challengeId: begun.challengeId, credential: answer })).toMatchObject({
      status: 'failed',
      reason: 'expired',
    });
    expect(await passkey.enrol.complete(ctx, { challengeId: 'not-a-uuid', credential: answer })).toMatchObject({ status: 'failed', reason: 'expired' });
    // A sign-in challenge is not an enrolment challenge.
    const signInChallenge = started(await passkey.start(ctx, {}));
    expect(await passkey.enrol.complete(ctx, { challengeId: signInChallenge.challengeId, credential: answer })).toMatchObject({
      status: 'failed',
      reason: 'expired',
    });
    expect(await nyckel.db.prisma.factorEnrolment.count({ where: { userId: user.id } })).toBe(1);
  });
});

describe('signing in with a passkey', () => {
  test('offers the user’s passkeys and verifies an assertion once, advancing the counter', async () => {
    const { user, key } = await enrolled(undefined, 'Laptop');
    const ctx = signIn(user);
    const { challengeId, credential, options } = await assertion(ctx, key);
    expect(options).toMatchObject({
      rpId: 'localhost',
      userVerification: 'preferred',
      allowCredentials: [{ id: key.id, type: 'public-key', transports: ['usb'] }],
    });
    expect(await passkey.verify(ctx, { challengeId, credential })).toEqual({ status: 'verified', amr: ['hwk', 'user'], target: 'Laptop' });
    expect(await passkey.verify(ctx, { challengeId, credential })).toEqual({ status: 'failed', reason: 'used' });
    const row = await nyckel.db.prisma.factorEnrolment.findFirstOrThrow({ where: { userId: user.id, type: 'passkey' } });
    expect((row.data as unknown as PasskeyData).counter).toBe(1);
  });

  test('of two parallel posts of one assertion exactly one passes', async () => {
    const { user, key } = await enrolled();
    const ctx = signIn(user);
    const { challengeId, credential } = await assertion(ctx, key);
    const outcomes = await Promise.all([0, 1, 2].map(() => passkey.verify(ctx, { challengeId, credential })));
    expect(outcomes.filter((o) => o.status === 'verified')).toHaveLength(1);
    expect(outcomes.filter((o) => o.status === 'failed' && o.reason === 'used')).toHaveLength(2);
  });

  test('a counter that does not advance (a cloned key) is refused', async () => {
    const { user, key } = await enrolled();
    const ctx = signIn(user);
    const first = await assertion(ctx, key, { counter: 5 });
    expect(await passkey.verify(ctx, first)).toMatchObject({ status: 'verified' });
    const clone = await assertion(ctx, key, { counter: 5 });
    expect(await passkey.verify(ctx, clone)).toMatchObject({ status: 'failed', reason: 'wrong_code' });
    const older = await assertion(ctx, key, { counter: 3 });
    expect(await passkey.verify(ctx, older)).toMatchObject({ status: 'failed', reason: 'wrong_code' });
  });

  test('another user’s passkey, a removed one, a wrong user handle, the wrong origin: wrong_code', async () => {
    const alice = await enrolled();
    const bob = await enrolled();
    const ctx = signIn(bob.user);
    // Bob's options, answered with Alice's key.
    expect(await passkey.verify(ctx, await assertion(ctx, alice.key))).toMatchObject({ status: 'failed', reason: 'wrong_code' });
    expect(await passkey.verify(ctx, await assertion(ctx, bob.key, { origin: 'https://evil.example' }))).toMatchObject({
      status: 'failed',
      reason: 'wrong_code',
    });
    const aliceHandle = Buffer.from(alice.user.id.replace(/-/g, ''), 'hex').toString('base64url');
    expect(await passkey.verify(ctx, await assertion(ctx, bob.key, { userHandle: aliceHandle }))).toMatchObject({ status: 'failed', reason: 'wrong_code' });
    await lock.reset(bob.user.id, 'passkey');
    const pending = await assertion(ctx, bob.key);
    await nyckel.db.prisma.factorEnrolment.deleteMany({ where: { userId: bob.user.id, type: 'passkey' } });
    expect(await passkey.verify(ctx, pending)).toEqual({ status: 'failed', reason: 'wrong_code', attemptsLeft: MAX_FAILURES - 1 });
    expect(await passkey.isEnrolled(bob.user)).toBe(false);
    expect(await passkey.start(ctx, {})).toEqual({ status: 'failed', reason: 'not_enrolled' });
  });

  test('a challenge is bound to its sign-in and expires', async () => {
    const { user, key } = await enrolled();
    const ctx = signIn(user);
    const answer = await assertion(ctx, key);
    expect(await passkey.verify(signIn(user), answer)).toMatchObject({ status: 'failed', reason: 'expired' });
    await nyckel.db.prisma.factorChallenge.update({ where: { id: answer.challengeId }, data: { expiresAt: new Date(Date.now() - 1000) } });
    expect(await passkey.verify(ctx, answer)).toEqual({ status: 'failed', reason: 'expired' });
    // A new challenge closes the one before it.
    const first = await assertion(ctx, key);
    const second = await assertion(ctx, key);
    expect(await passkey.verify(ctx, first)).toEqual({ status: 'failed', reason: 'used' });
    expect(await passkey.verify(ctx, second)).toMatchObject({ status: 'verified' });
  });

  test('wrong answers count against the failure lock; a right one clears it', async () => {
    const { user, key } = await enrolled();
    const ctx = signIn(user);
    expect(await passkey.verify(ctx, { challengeId: (await assertion(ctx, key)).challengeId, credential: null })).toEqual({
      status: 'failed',
      reason: 'wrong_code',
      attemptsLeft: MAX_FAILURES - 1,
    });
    expect(await passkey.verify(ctx, await assertion(ctx, key))).toMatchObject({ status: 'verified' });
    const outcomes = [];
    for (let i = 0; i < MAX_FAILURES; i++) {
      const { challengeId } = await assertion(ctx, key);
      outcomes.push(await passkey.verify(ctx, { challengeId, credential: 'garbage' }));
    }
    expect(outcomes.map((o) => (o.status === 'failed' ? o.reason : o.status))).toEqual(['wrong_code', 'wrong_code', 'wrong_code', 'locked']);
    expect(await passkey.verify(ctx, await assertion(ctx, key))).toMatchObject({ status: 'failed', reason: 'locked' });
  });
});

describe('a passkey instead of the password', () => {
  const handleOf = (user: User) => Buffer.from(user.id.replace(/-/g, ''), 'hex').toString('base64url');

  test('a discoverable credential with user verification names its user: two factors in one', async () => {
    const { user, key } = await enrolled(undefined, 'Phone');
    const uid = crypto.randomUUID();
    const { options, token } = await passkey.passwordless.start(uid);
    expect(options).toMatchObject({ rpId: 'localhost', userVerification: 'required' });
    expect(options.allowCredentials ?? []).toEqual([]);
    const credential = key.authenticate(options, { userHandle: handleOf(user) });
    const outcome = await passkey.passwordless.verify({ uid, token, credential });
    expect(outcome).toMatchObject({ status: 'verified', amr: ['hwk', 'user'], label: 'Phone' });
    expect(outcome.status === 'verified' && outcome.user.id).toBe(user.id);
    // The same answer again: its counter no longer rises.
    expect(await passkey.passwordless.verify({ uid, token, credential })).toMatchObject({ status: 'failed', reason: 'wrong_code' });
  });

  test('each challenge works once, even for a key without a counter and in parallel', async () => {
    const { user, key } = await enrolled();
    const uid = crypto.randomUUID();
    const { options, token } = await passkey.passwordless.start(uid);
    const credential = key.authenticate(options, { userHandle: handleOf(user), counter: 0 });
    const outcomes = await Promise.all([0, 1, 2].map(() => passkey.passwordless.verify({ uid, token, credential })));
    expect(outcomes.filter((o) => o.status === 'verified')).toHaveLength(1);
    expect(outcomes.filter((o) => o.status === 'failed' && o.reason === 'used')).toHaveLength(2);
  });

  test('refused: without user verification, another interaction, a forged token, no or a foreign user handle', async () => {
    const quiet = await enrolled(new SoftAuthenticator(origin, { userVerified: false }));
    const uid = crypto.randomUUID();
    let start = await passkey.passwordless.start(uid);
    expect(
      await passkey.passwordless.verify({
        uid,
        token: start.token,
        credential: quiet.key.authenticate(start.options as never, { userHandle: handleOf(quiet.user) }),
      }),
    ).toEqual({
      status: 'failed',
      reason: 'user_not_verified',
    });

    const { user, key } = await enrolled();
    start = await passkey.passwordless.start(uid);
    const answer = key.authenticate(start.options, { userHandle: handleOf(user) });
    expect(await passkey.passwordless.verify({ uid: crypto.randomUUID(), token: start.token, credential: answer })).toEqual({
      status: 'failed',
      reason: 'expired',
    });
    expect(await passkey.passwordless.verify({ uid, token: 'forged', credential: answer })).toEqual({ status: 'failed', reason: 'expired' });
    expect(await passkey.passwordless.verify({ uid, token: start.token, credential: key.authenticate(start.options as never) })).toEqual({
      status: 'failed',
      reason: 'wrong_code',
    });
    expect(
      await passkey.passwordless.verify({
        uid,
        token: start.token,
        credential: key.authenticate(start.options as never, { userHandle: handleOf(quiet.user) }),
      }),
    ).toEqual({
      status: 'failed',
      reason: 'wrong_code',
    });
    expect(await passkey.passwordless.verify({ uid, token: start.token, credential: 'garbage' })).toEqual({ status: 'failed', reason: 'wrong_code' });
  });
});
