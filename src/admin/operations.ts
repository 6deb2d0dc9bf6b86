import { emailSchema } from '../accounts/accounts.ts';
import type { AuditContext, AuditLog } from '../accounts/audit.ts';
import type { Settings } from '../config/settings.ts';
import { NyckelError } from '../errors.ts';
import type { User } from '../generated/prisma/client.ts';
import type { PrismaClient } from '../storage/db.ts';
import { FailureLock } from '../factors/shared/failure-lock.ts';
import { LoginThrottle } from '../accounts/login-throttle.ts';
import type { CounterStore } from '../storage/counters.ts';

/**
 * What an operator does to one account beyond what Accounts offers: the full picture of a user, a
 * new sign-in address, lifting locks, reading the audit log. Shared by the CLI and the admin API, so
 * both behave (and audit) the same.
 */

/** The counters behind the locks an operator sees and lifts (in Redis or the database, as configured). */
export interface AccountLocks {
  failures: FailureLock;
  throttle: LoginThrottle;
}

export const accountLocks = (settings: Settings, counters: CounterStore): AccountLocks => ({
  failures: new FailureLock(counters, settings.factors.maxFailures, settings.factors.lockSeconds),
  throttle: new LoginThrottle(counters, settings.loginThrottle),
});

export interface LockState {
  /** `password`, or the factor family (`email`, `totp`, `sms`, `recovery-code`, …). */
  kind: string;
  failures: number;
  locked: boolean;
  /** When the count lapses (and a lock with it). */
  until: string | null;
}

export interface AuditEntry {
  id: string;
  at: string;
  type: string;
  userId: string | null;
  email: string | null;
  username: string | null;
  ip: string | null;
  data: Record<string, unknown>;
}

export interface UserDetails {
  id: string;
  email: string | null;
  username: string | null;
  name: string | null;
  status: string;
  locale: string | null;
  createdAt: string;
  updatedAt: string;
  passwordChangedAt: string;
  /** The user asked to delete the account: erased then, unless enabled again before. */
  deletionDueAt: string | null;
  emails: Array<{ address: string; signIn: boolean; verified: boolean; verifiedAt: string | null; createdAt: string }>;
  phones: Array<{ number: string; verified: boolean; verifiedAt: string | null; createdAt: string }>;
  methods: Array<{ id: string; type: string; label: string; confirmed: boolean; createdAt: string; lastUsedAt: string | null }>;
  /** Browsers that may still skip a required second factor. */
  rememberedBrowsers: number;
  locks: LockState[];
  locked: boolean;
  recentEvents: AuditEntry[];
}

const iso = (date: Date | null) => (date ? date.toISOString() : null);

export async function lockStates(user: User, locks: AccountLocks, now = new Date()): Promise<LockState[]> {
  const [factorCounts, passwordCounts] = await Promise.all([
    locks.failures.counts(user.id, now.getTime()),
    locks.throttle.accountCount(user, now.getTime()).then((count) => [count]),
  ]);
  const factorStates = factorCounts.map((count) => ({
    kind: count.family,
    failures: count.failures,
    locked: count.failures >= locks.failures.maxFailures,
    until: iso(count.until),
  }));
  const passwordStates = passwordCounts.flatMap((count) =>
    count ? [{ kind: 'password', failures: count.failures, locked: count.failures >= locks.throttle.limits.perAccount, until: iso(count.until) }] : [],
  );
  return [...factorStates, ...passwordStates].sort((a, b) => a.kind.localeCompare(b.kind));
}

function toAuditEntry(row: {
  id: bigint;
  createdAt: Date;
  type: string;
  userId: string | null;
  ip: string | null;
  data: unknown;
  user?: { email: string | null; username: string | null } | null;
}): AuditEntry {
  return {
    id: row.id.toString(),
    at: row.createdAt.toISOString(),
    type: row.type,
    userId: row.userId,
    email: row.user?.email ?? null,
    username: row.user?.username ?? null,
    ip: row.ip,
    data: (row.data ?? {}) as Record<string, unknown>,
  };
}

/** The newest `limit` events (of one user, or of everyone), oldest first. */
export async function auditTail(prisma: PrismaClient, options: { userId?: string; limit: number }): Promise<AuditEntry[]> {
  const rows = await prisma.auditEvent.findMany({
    where: options.userId ? { userId: options.userId } : {},
    orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
    take: options.limit,
    include: { user: { select: { email: true, username: true } } },
  });
  return rows.reverse().map(toAuditEntry);
}

export async function userDetails(prisma: PrismaClient, user: User, counters: AccountLocks, now = new Date()): Promise<UserDetails> {
  const [emails, phones, methods, rememberedBrowsers, locks, recentEvents] = await Promise.all([
    prisma.userEmail.findMany({ where: { userId: user.id }, orderBy: { createdAt: 'asc' } }),
    prisma.userPhone.findMany({ where: { userId: user.id }, orderBy: { createdAt: 'asc' } }),
    prisma.factorEnrolment.findMany({ where: { userId: user.id }, orderBy: [{ position: 'asc' }, { createdAt: 'asc' }] }),
    // The same test as RememberedBrowsers.recognise: a password change ends the earlier ones.
    prisma.rememberedBrowser.count({ where: { userId: user.id, revokedAt: null, expiresAt: { gt: now }, createdAt: { gt: user.passwordChangedAt } } }),
    lockStates(user, counters, now),
    auditTail(prisma, { userId: user.id, limit: 10 }),
  ]);
  return {
    id: user.id,
    email: user.email,
    username: user.username,
    name: user.name,
    status: user.status,
    locale: user.locale,
    createdAt: user.createdAt.toISOString(),
    updatedAt: user.updatedAt.toISOString(),
    passwordChangedAt: user.passwordChangedAt.toISOString(),
    deletionDueAt: iso(user.deletionDueAt),
    emails: emails.map((row) => ({
      address: row.address,
      signIn: row.address === user.email,
      verified: Boolean(row.verifiedAt),
      verifiedAt: iso(row.verifiedAt),
      createdAt: row.createdAt.toISOString(),
    })),
    phones: phones.map((row) => ({
      number: row.e164,
      verified: Boolean(row.verifiedAt),
      verifiedAt: iso(row.verifiedAt),
      createdAt: row.createdAt.toISOString(),
    })),
    methods: methods.map((row) => ({
      id: row.id,
      type: row.type,
      label: row.label,
      confirmed: row.confirmed,
      createdAt: row.createdAt.toISOString(),
      lastUsedAt: iso(row.lastUsedAt),
    })),
    rememberedBrowsers,
    locks,
    locked: locks.some((lock) => lock.locked),
    recentEvents,
  };
}

/**
 * Clears every second-factor failure lock of the user and the password throttle of the account
 * (the per-IP budget is not the user's and stays). Returns how many counters went.
 */
export async function unlockUser(
  prisma: PrismaClient,
  audit: AuditLog,
  locks: AccountLocks,
  user: User,
  context: AuditContext & { actor: string },
): Promise<number> {
  const factorCounts = await locks.failures.clear(user.id);
  const passwordCounts = (await locks.throttle.clearAccount(user)) ? 1 : 0;
  const cleared = factorCounts + passwordCounts;
  await audit.record('user.unlocked', { userId: user.id, ip: context.ip, userAgent: context.userAgent, data: { cleared, actor: context.actor } });
  return cleared;
}

/**
 * Makes `newAddress` the user's sign-in address. It becomes a verified contact address (the
 * operator vouches for it); the old one stays as an ordinary contact address, which remove-email
 * can take away. Refused when another user signs in with that address.
 */
export async function setSignInEmail(
  prisma: PrismaClient,
  audit: AuditLog,
  user: User,
  newAddress: string,
  context: AuditContext & { actor: string },
): Promise<User> {
  const address = emailSchema.parse(newAddress);
  if (address === user.email) throw new NyckelError('conflict', `${address} is already the sign-in address`);
  try {
    return await prisma.$transaction(async (tx) => {
      const clash = await tx.user.findUnique({ where: { email: address }, select: { id: true } });
      if (clash) throw new NyckelError('conflict', `another user already signs in with ${address}`);
      const updated = await tx.user.update({ where: { id: user.id }, data: { email: address } });
      await tx.userEmail.upsert({
        where: { userId_address: { userId: user.id, address } },
        create: { userId: user.id, address, verifiedAt: new Date() },
        update: { verifiedAt: new Date() },
      });
      await audit.within(tx).record('user.email_changed', {
        userId: user.id,
        ip: context.ip,
        userAgent: context.userAgent,
        data: { from: user.email, to: address, actor: context.actor },
      });
      return updated;
    });
  } catch (error) {
    // A parallel change to the same address: the unique index decides, and says so as a clash.
    if ((error as { code?: string }).code === 'P2002') throw new NyckelError('conflict', `another user already signs in with ${address}`);
    throw error;
  }
}
