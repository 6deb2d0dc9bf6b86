import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { AuditLog, type AuditDb } from '../../src/accounts/audit.ts';
import { eraseDueAccounts, eraseUser, type ErasureDependencies } from '../../src/accounts/erase.ts';
import { ERASED, pseudonymOf } from '../../src/accounts/pseudonymise.ts';
import { NyckelError } from '../../src/errors.ts';
import { newMasterKey, SecretBox } from '../../src/security/crypto.ts';
import { openDatabase, type Database } from '../../src/storage/db.ts';
import { applyMigrations } from '../../src/storage/migrate.ts';
import { freshDatabase } from '../support/database.ts';
import { rowsNaming } from '../support/personal-data.ts';

/** eraseUser and the sweep's eraseDueAccounts on the real database: what goes, what stays, races, all or nothing. */
let db: Database;
let drop: () => Promise<void>;
let deps: ErasureDependencies;
const box = new SecretBox(Buffer.from(newMasterKey(), 'base64url'));

beforeAll(async () => {
  const fresh = await freshDatabase();
  drop = fresh.drop;
  db = await openDatabase(fresh.target);
  await applyMigrations(db.adapterFactory);
  deps = { prisma: db.prisma, box, audit: new AuditLog(db.prisma), revokeElsewhere: async () => {} };
});
afterAll(async () => {
  await db?.close();
  await drop?.();
});

let counter = 0;
async function newUser(data: { deletionDueAt?: Date; name?: string } = {}) {
  counter += 1;
  const email = `erase${counter}@storage.example`;
  const user = await db.prisma.user.create({
    data: {
      email,
      username: `eraser-${counter}`,
      passwordHash: 'x',
      emails: { create: [{ address: email }] },
      phones: { create: [{ e164: `+4670111220${counter}` }] },
      ...data,
    },
  });
  await db.prisma.auditEvent.create({ data: { userId: user.id, type: 'user.email_added', ip: '203.0.113.9', data: { address: email, actor: 'user' } } });
  return { user, email, names: [user.id, email, user.username!, `+4670111220${counter}`] };
}

describe('eraseUser', () => {
  test("another account's events that mention the user lose the mention but keep their owner; unrelated events stay as they were", async () => {
    const { user, email, names } = await newUser();
    const other = await newUser();
    const mention = await db.prisma.auditEvent.create({
      data: { userId: other.user.id, type: 'user.email_changed', ip: '192.0.2.1', data: { actor: 'cli', note: `was ${email}`, count: 2 } },
    });
    const typed = await db.prisma.auditEvent.create({ data: { type: 'login.failed', data: { reason: 'unknown', typed: email.toUpperCase() } } });
    const unrelated = await db.prisma.auditEvent.create({ data: { userId: other.user.id, type: 'login.succeeded', ip: '192.0.2.1', data: { acr: 'pwd' } } });

    const report = await eraseUser(deps, user.id, { actor: 'cli', reason: `asked by ${email.toUpperCase()} in a letter` });
    expect(report).toMatchObject({ subject: pseudonymOf(box, user.id), auditEventsPseudonymised: 1 });
    expect(await rowsNaming(db.prisma, names)).toEqual([]);
    expect(await db.prisma.auditEvent.findUniqueOrThrow({ where: { id: mention.id } })).toMatchObject({
      userId: other.user.id,
      ip: '192.0.2.1',
      data: { actor: 'cli', note: `was ${ERASED}`, count: 2 },
    });
    expect((await db.prisma.auditEvent.findUniqueOrThrow({ where: { id: typed.id } })).data).toEqual({ reason: 'unknown', typed: ERASED });
    expect(await db.prisma.auditEvent.findUniqueOrThrow({ where: { id: unrelated.id } })).toEqual(unrelated);
    expect(await db.prisma.user.count({ where: { id: other.user.id } })).toBe(1);
    const erased = await db.prisma.auditEvent.findFirstOrThrow({ where: { type: 'user.erased', data: { path: ['subject'], equals: report.subject } } });
    expect(erased.data).toMatchObject({ reason: `asked by ${ERASED} in a letter`, actor: 'cli' });
  });

  test("another account's events keep what is theirs: a name that merely contains the user's, the display name, their IP address and browser", async () => {
    counter += 1;
    const [annas, hannas] = [`anna${counter}@x.example`, `hanna${counter}@x.example`];
    const anna = await db.prisma.user.create({ data: { email: annas, username: `anna${counter}`, name: 'Anna', passwordHash: 'x' } });
    const hanna = await db.prisma.user.create({ data: { email: hannas, username: `hanna${counter}`, name: 'Hanna Anna Berg', passwordHash: 'x' } });
    const theirs = { ip: '192.0.2.7', userAgent: 'Firefox/140' };
    const event = (userId: string | null, type: string, data: object) => db.prisma.auditEvent.create({ data: { userId, type, ...theirs, data } });
    // Nothing here names Anna as a whole: hanna's address and user name contain hers, "Anna" is a name they share.
    const untouched = [
      await event(hanna.id, 'user.email_added', { address: hannas, ...theirs, actor: 'user' }),
      await event(hanna.id, 'user.updated', { name: 'Hanna Anna Berg', username: hanna.username, note: `Anna's sister, j.${annas}` }),
      await event(null, 'login.failed', { typed: hannas.toUpperCase(), ...theirs }),
    ];
    // A whole mention of Anna's address or user name goes, and nothing else of the event.
    const mention = await event(hanna.id, 'user.email_changed', { from: annas, to: hannas, ...theirs, note: `asked by ${anna.username}.` });

    await eraseUser(deps, anna.id, { actor: 'cli', reason: 'test' });
    const after = await db.prisma.auditEvent.findMany({ where: { id: { in: [...untouched, mention].map((row) => row.id) } }, orderBy: { id: 'asc' } });
    expect(after).toEqual([...untouched, { ...mention, data: { from: ERASED, to: hannas, ...theirs, note: `asked by ${ERASED}.` } }]);
  });

  test("the user's rate-limit counters go; another's whose key merely contains one of the user's names, or is their display name, stays", async () => {
    const { user, email } = await newUser({ name: 'Bob' });
    const expire = new Date(Date.now() + 60_000);
    const mine = [`login-account:user:${user.id}`, `email-cooldown:${user.id}:${email}`, `login-account:name:${email.toUpperCase()}`];
    // Someone typed "bob" to sign in: not this user's counter, though "Bob" is this user's display name.
    const others = [`login-account:name:h${email}`, `email-cooldown:${crypto.randomUUID()}:${email}.se`, 'login-account:name:bob'];
    await db.prisma.rateLimit.createMany({ data: [...mine, ...others].map((key) => ({ key, points: 1, expire })) });
    await eraseUser(deps, user.id, { actor: 'cli', reason: 'test' });
    expect((await db.prisma.rateLimit.findMany({ where: { key: { in: [...mine, ...others] } } })).map((row) => row.key).sort()).toEqual([...others].sort());
  });

  test('two erasures of one user at once: one erases, the other finds no user; one erasure is audited', async () => {
    const { user } = await newUser();
    const results = await Promise.allSettled([0, 1].map(() => eraseUser(deps, user.id, { actor: 'cli', reason: 'twice' })));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(failed.reason).toBeInstanceOf(NyckelError);
    expect((failed.reason as NyckelError).code).toBe('not_found');
    expect(await db.prisma.auditEvent.count({ where: { type: 'user.erased', data: { path: ['subject'], equals: pseudonymOf(box, user.id) } } })).toBe(1);
  });

  test('all or nothing: when the last step fails, the account and its events are as they were', async () => {
    const { user, names } = await newUser();
    const before = await db.prisma.auditEvent.findMany({ where: { userId: user.id } });
    class FailingAudit extends AuditLog {
      override within(tx: AuditDb): AuditLog {
        const inner = new AuditLog(tx);
        return Object.assign(Object.create(AuditLog.prototype) as AuditLog, {
          record: async (type: Parameters<AuditLog['record']>[0], event: Parameters<AuditLog['record']>[1]) => {
            if (type === 'user.erased') throw new Error('disk full');
            return inner.record(type, event);
          },
        });
      }
    }
    await expect(eraseUser({ ...deps, audit: new FailingAudit(db.prisma) }, user.id, { actor: 'cli', reason: 'fails' })).rejects.toThrow('disk full');
    expect(await db.prisma.user.count({ where: { id: user.id } })).toBe(1);
    expect(await db.prisma.auditEvent.findMany({ where: { userId: user.id } })).toEqual(before);
    expect((await rowsNaming(db.prisma, names)).length).toBeGreaterThan(0);
  });
});

describe('eraseDueAccounts (the sweep)', () => {
  test('erases the accounts whose grace period has ended, and no other', async () => {
    const due = await newUser({ deletionDueAt: new Date(Date.now() - 60_000) });
    const later = await newUser({ deletionDueAt: new Date(Date.now() + 86_400_000) });
    const kept = await newUser();
    expect(await eraseDueAccounts(deps)).toBe(1);
    expect(await db.prisma.user.count({ where: { id: due.user.id } })).toBe(0);
    expect(await db.prisma.user.count({ where: { id: { in: [later.user.id, kept.user.id] } } })).toBe(2);
    const erased = await db.prisma.auditEvent.findFirstOrThrow({
      where: { type: 'user.erased', data: { path: ['subject'], equals: pseudonymOf(box, due.user.id) } },
    });
    expect(erased.data).toMatchObject({ actor: 'user', reason: expect.stringContaining('grace period ended') });
    expect(erased.ip).toBeNull();
  });

  test('an account that cannot be erased is logged and left for the next sweep; the others are erased, oldest due first', async () => {
    // Created in the reverse order of their due dates, so that only the order by due date puts the oldest first.
    const [newest, failing, oldest] = [await newUser(), await newUser(), await newUser()];
    for (const [i, { user }] of [oldest, failing, newest].entries()) {
      await db.prisma.user.update({ where: { id: user.id }, data: { deletionDueAt: new Date(Date.now() - (3 - i) * 60_000), status: 'disabled' } });
    }
    const attempted: string[] = [];
    // The erasure of `failing` fails at its last step (a full disk, a lost connection): its transaction rolls back.
    class FailingFor extends AuditLog {
      override within(tx: AuditDb): AuditLog {
        const inner = new AuditLog(tx);
        return Object.assign(Object.create(AuditLog.prototype) as AuditLog, {
          record: async (type: Parameters<AuditLog['record']>[0], event: Parameters<AuditLog['record']>[1]) => {
            const subject = (event?.data as { subject?: string } | undefined)?.subject;
            if (type === 'user.erased') attempted.push(subject!);
            if (type === 'user.erased' && subject === pseudonymOf(box, failing.user.id)) throw new Error('disk full');
            return inner.record(type, event);
          },
        });
      }
    }
    const warnings: Array<{ context: Record<string, unknown>; message: string }> = [];
    const warn = (context: Record<string, unknown>, message: string) => void warnings.push({ context, message });

    expect(await eraseDueAccounts({ ...deps, audit: new FailingFor(db.prisma), warn })).toBe(2);
    expect(attempted).toEqual([oldest, failing, newest].map(({ user }) => pseudonymOf(box, user.id)));
    expect(await db.prisma.user.count({ where: { id: { in: [oldest.user.id, newest.user.id] } } })).toBe(0);
    expect(await db.prisma.user.findUniqueOrThrow({ where: { id: failing.user.id } })).toMatchObject({ status: 'disabled', deletionDueAt: expect.any(Date) });
    expect((await rowsNaming(db.prisma, failing.names)).length).toBeGreaterThan(0);
    expect(warnings).toEqual([
      {
        context: { err: expect.objectContaining({ message: 'disk full' }), userId: failing.user.id },
        message: expect.stringContaining('could not be erased; trying again at the next sweep'),
      },
    ]);

    // The next sweep, with the fault gone, erases it.
    expect(await eraseDueAccounts(deps)).toBe(1);
    expect(await db.prisma.user.count({ where: { id: failing.user.id } })).toBe(0);
  });

  test('a deletion cancelled while the sweep runs is not erased', async () => {
    const { user } = await newUser({ deletionDueAt: new Date(Date.now() - 60_000) });
    // The sweep found it due, then the operator enabled the account before its erasure began.
    await db.prisma.user.update({ where: { id: user.id }, data: { deletionDueAt: null, status: 'active' } });
    await expect(eraseUser(deps, user.id, { actor: 'user', reason: 'grace', dueBy: new Date() })).rejects.toMatchObject({ code: 'not_found' });
    expect(await db.prisma.user.count({ where: { id: user.id } })).toBe(1);
  });
});
