import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { AuditLog } from '../../src/accounts/audit.ts';
import { resetSecondFactors as reset, type ResetFactorsOptions } from '../../src/accounts/reset-factors.ts';
import { NyckelError } from '../../src/errors.ts';
import { openDatabase, type Database } from '../../src/storage/db.ts';
import { applyMigrations } from '../../src/storage/migrate.ts';
import { freshDatabase } from '../support/database.ts';

/** resetSecondFactors on the real database: what goes, what stays, and that it is all or nothing. */
let db: Database;
let drop: () => Promise<void>;
let audit: AuditLog;

beforeAll(async () => {
  const fresh = await freshDatabase();
  drop = fresh.drop;
  db = await openDatabase(fresh.target);
  await applyMigrations(db.adapterFactory);
  audit = new AuditLog(db.prisma);
});
afterAll(async () => {
  await db?.close();
  await drop?.();
});

/** The grant ids handed on to the other store (Redis), after each reset that committed. */
let revokedElsewhere: string[][] = [];
const resetSecondFactors = (prisma: Database['prisma'], log: AuditLog, userId: string, options: ResetFactorsOptions) =>
  reset(prisma, log, userId, options, async ({ grantIds }) => {
    revokedElsewhere.push(grantIds);
  });

let counter = 0;
/** A user with one of everything a reset touches, plus an email address that must stay. */
async function userWithEverything() {
  const { prisma } = db;
  counter += 1;
  const user = await prisma.user.create({
    data: {
      email: `user${counter}@reset.example`,
      passwordHash: 'x',
      emails: { create: [{ address: `user${counter}@reset.example`, verifiedAt: new Date() }, { address: `home${counter}@reset.example` }] },
      phones: { create: [{ e164: `+4670123456${counter}`, verifiedAt: new Date() }] },
    },
  });
  await prisma.factorEnrolment.createMany({
    data: ['totp', 'passkey', 'recovery-code', 'push', 'bankid'].map((type, position) => ({ userId: user.id, type, label: type, position, confirmed: true })),
  });
  const expiresAt = new Date(Date.now() + 86_400_000);
  await prisma.rememberedBrowser.createMany({
    data: [
      { userId: user.id, tokenHash: `hash-a-${counter}`, factor: 'totp', expiresAt },
      { userId: user.id, tokenHash: `hash-b-${counter}`, factor: 'sms', expiresAt },
    ],
  });
  await prisma.factorChallenge.create({ data: { userId: user.id, factor: 'sms', expiresAt } });
  await prisma.oidcModel.createMany({
    data: [
      { type: 'Session', id: `s1-${counter}`, uid: `uid1-${counter}`, payload: { accountId: user.id, uid: `uid1-${counter}` }, expiresAt },
      { type: 'Session', id: `s2-${counter}`, uid: `uid2-${counter}`, payload: { accountId: user.id, uid: `uid2-${counter}` }, expiresAt },
      { type: 'Session', id: `s3-${counter}`, uid: null, payload: { accountId: user.id }, expiresAt },
      // A relying party's grant, its refresh and access tokens, and an interaction of the grant (no accountId).
      { type: 'Grant', id: `g-${counter}`, payload: { accountId: user.id, clientId: 'web', jti: `g-${counter}` }, expiresAt },
      { type: 'RefreshToken', id: `rt-${counter}`, grantId: `g-${counter}`, payload: { accountId: user.id, grantId: `g-${counter}` }, expiresAt },
      { type: 'AccessToken', id: `at-${counter}`, grantId: `g-${counter}`, payload: { accountId: user.id, grantId: `g-${counter}` }, expiresAt },
      { type: 'Interaction', id: `i-${counter}`, uid: `i-${counter}`, grantId: `g-${counter}`, payload: { grantId: `g-${counter}` }, expiresAt },
    ],
  });
  return user;
}

async function grantIdsOf(userId: string) {
  return (await db.prisma.oidcModel.findMany({ where: { type: 'Grant', payload: { path: ['accountId'], equals: userId } } })).map((grant) => grant.id);
}

async function snapshot(userId: string) {
  const { prisma } = db;
  return {
    factors: await prisma.factorEnrolment.count({ where: { userId } }),
    phones: await prisma.userPhone.count({ where: { userId } }),
    emails: await prisma.userEmail.count({ where: { userId } }),
    activeBrowsers: await prisma.rememberedBrowser.count({ where: { userId, revokedAt: null } }),
    challenges: await prisma.factorChallenge.count({ where: { userId } }),
    sessions: (await prisma.oidcModel.findMany({ where: { type: 'Session', payload: { path: ['accountId'], equals: userId } } })).map((s) => s.id).sort(),
    grantModels: (
      await prisma.oidcModel.findMany({
        where: { OR: [{ type: 'Grant', payload: { path: ['accountId'], equals: userId } }, { grantId: { in: await grantIdsOf(userId) } }] },
      })
    )
      .map((m) => m.type)
      .sort(),
    resets: await prisma.auditEvent.count({ where: { userId, type: 'user.factors_reset' } }),
  };
}

describe('resetSecondFactors', () => {
  test('removes every factor type, phone, remembered browser, pending challenge, session and grant of the user; keeps emails and other users', async () => {
    const user = await userWithEverything();
    const other = await userWithEverything();
    const otherBefore = await snapshot(other.id);
    expect(otherBefore.grantModels).toEqual(['AccessToken', 'Grant', 'Interaction', 'RefreshToken']);
    revokedElsewhere = [];

    const removed = await resetSecondFactors(db.prisma, audit, user.id, { reason: 'ticket 12: stolen phone', actor: 'cli', ip: '192.0.2.7' });
    expect(removed).toEqual({ factors: 5, phones: 1, rememberedBrowsers: 2, challenges: 1, sessions: 3, grants: 1 });
    expect(await snapshot(user.id)).toEqual({ factors: 0, phones: 0, emails: 2, activeBrowsers: 0, challenges: 0, sessions: [], grantModels: [], resets: 1 });
    expect(await db.prisma.oidcModel.count({ where: { grantId: `g-${counter - 1}` } })).toBe(0);
    expect(await snapshot(other.id)).toEqual(otherBefore);
    // The grant is handed on to clear what Redis keeps of it.
    expect(revokedElsewhere).toEqual([[`g-${counter - 1}`]]);

    const event = await db.prisma.auditEvent.findFirstOrThrow({ where: { userId: user.id, type: 'user.factors_reset' } });
    expect(event).toMatchObject({ ip: '192.0.2.7', data: { reason: 'ticket 12: stolen phone', actor: 'cli', removed } });

    // Nothing left: a second reset removes nothing, and is still recorded.
    expect(await resetSecondFactors(db.prisma, audit, user.id, { reason: 'again', actor: 'cli' })).toEqual({
      factors: 0,
      phones: 0,
      rememberedBrowsers: 0,
      challenges: 0,
      sessions: 0,
      grants: 0,
    });
  });

  test("keepSessionUid keeps the caller's own session (and only it)", async () => {
    const user = await userWithEverything();
    const removed = await resetSecondFactors(db.prisma, audit, user.id, { reason: 'delete all my devices', actor: 'user', keepSessionUid: `uid2-${counter}` });
    expect(removed.sessions).toBe(2);
    expect((await snapshot(user.id)).sessions).toEqual([`s2-${counter}`]);
  });

  test('refuses without a reason and for an unknown user, changing nothing', async () => {
    const user = await userWithEverything();
    const before = await snapshot(user.id);
    await expect(resetSecondFactors(db.prisma, audit, user.id, { reason: '  ', actor: 'cli' })).rejects.toMatchObject({ code: 'invalid_input' });
    await expect(resetSecondFactors(db.prisma, audit, '00000000-0000-4000-8000-000000000000', { reason: 'x', actor: 'cli' })).rejects.toBeInstanceOf(
      NyckelError,
    );
    expect(await snapshot(user.id)).toEqual(before);
  });

  test('one transaction: when the audit event cannot be written, nothing is removed', async () => {
    const user = await userWithEverything();
    const before = await snapshot(user.id);
    const failingAudit = Object.assign(Object.create(AuditLog.prototype) as AuditLog, {
      within: () => ({ record: async () => Promise.reject(new Error('audit store unavailable')) }),
    });
    revokedElsewhere = [];
    await expect(resetSecondFactors(db.prisma, failingAudit, user.id, { reason: 'x', actor: 'cli' })).rejects.toThrow('audit store unavailable');
    expect(await snapshot(user.id)).toEqual(before);
    expect(revokedElsewhere).toEqual([]);
  });
});
