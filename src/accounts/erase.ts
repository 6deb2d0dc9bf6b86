import type { Redis } from 'ioredis';
import { NyckelError } from '../errors.ts';
import type { Prisma } from '../generated/prisma/client.ts';
import type { SecretBox } from '../security/crypto.ts';
import type { PrismaClient } from '../storage/db.ts';
import type { AuditContext, AuditLog } from './audit.ts';
import { maskMentions, maskNames, pseudonymOf, scrubDetails, searchableNames } from './pseudonymise.ts';
import { revokeUserAccess, type RevokeElsewhere, type Warn } from './revoke-access.ts';

/**
 * Erasing an account (GDPR article 17): the user row and, with it, every address, number, sign-in
 * method, consent and invitation; their sessions, grants and every token and code issued under them;
 * remembered browsers, pending sign-ins and challenges; mail and texts to their addresses and numbers;
 * rate-limit counters keyed by them. Audit events stay for the record, pseudonymised: the user id
 * becomes a keyed hash (pseudonymise.ts), and addresses, numbers, names, IP addresses and browsers
 * leave their details. The erasure itself is audited the same way, with the reason.
 *
 * All of it is one transaction. What is kept in Redis is cleared right after the commit: access
 * tokens and codes (without their grant they are refused anyway), and the counters keyed by the user.
 */

export interface ErasureDependencies {
  prisma: PrismaClient;
  box: SecretBox;
  audit: AuditLog;
  revokeElsewhere: RevokeElsewhere;
  /** Where the nodes keep counters, when in Redis (opened only when needed, by the CLI). */
  redis?: Redis | (() => Promise<Redis | undefined>);
  warn?: Warn;
}

export interface ErasureContext extends AuditContext {
  /** Who erased it: `cli`, `client:<id>`, or `user` (the grace period of the user's own request ended). */
  actor: string;
  reason: string;
  /** Erase only if the deletion the user asked for is still due by then (the sweep; not cancelled meanwhile). */
  dueBy?: Date;
}

export interface ErasureReport {
  /** What the user's audit events name them by now. */
  subject: string;
  sessionsEnded: number;
  grantsRevoked: number;
  auditEventsPseudonymised: number;
  messagesDeleted: number;
}

/** Enough time for a user with years of audit events, on a slow disk. */
const TRANSACTION = { timeout: 120_000, maxWait: 10_000 };

export async function eraseUser(deps: ErasureDependencies, userId: string, context: ErasureContext): Promise<ErasureReport> {
  const subject = pseudonymOf(deps.box, userId);
  const report = await deps.prisma.$transaction(async (tx) => {
    // The row is locked first: a parallel erasure (another node's sweep) waits, then finds nothing.
    const locked = context.dueBy
      ? await tx.$queryRaw<unknown[]>`SELECT id FROM users WHERE id = ${userId}::uuid AND deletion_due_at <= ${context.dueBy} FOR UPDATE`
      : await tx.$queryRaw<unknown[]>`SELECT id FROM users WHERE id = ${userId}::uuid FOR UPDATE`;
    if (locked.length === 0) throw new NyckelError('not_found', `no user with the id ${userId}`);
    const { names, identifiers } = await namesOf(tx, userId);
    const revoked = await revokeUserAccess(tx, userId);
    await tx.rememberedBrowser.deleteMany({ where: { userId } });
    await tx.factorChallenge.deleteMany({ where: { userId } });
    await tx.signInAttempt.deleteMany({ where: { userId } });
    const messages = await tx.delivery.deleteMany({
      where: { OR: identifiers.map((name) => ({ recipient: { equals: name, mode: 'insensitive' as const } })) },
    });
    // A counter's key is `<budget>:<subject…>` (an id, an address, a number): only keys with one of the
    // user's identifiers as a whole part go, never another user's whose key merely contains it ("anna" in
    // "hanna"), nor one that names what someone typed that happens to be this user's display name.
    await tx.$executeRaw`DELETE FROM rate_limits WHERE string_to_array(lower(key), ':') && ${identifiers}::text[]`;
    const pseudonymised = await pseudonymiseAuditEvents(tx, userId, subject, { names, identifiers });
    await tx.user.delete({ where: { id: userId } });
    const { actor, reason, ip, userAgent } = context;
    // The user's own request: where it came from is theirs too, and goes with the rest.
    const where = actor === 'user' ? {} : { ip, userAgent };
    await deps.audit.within(tx).record('user.erased', {
      userId: null,
      data: {
        subject,
        reason: maskNames(reason, names),
        actor,
        sessionsEnded: revoked.sessions,
        grantsRevoked: revoked.grants,
        auditEventsPseudonymised: pseudonymised,
      },
      ...where,
    });
    return {
      grantIds: revoked.grantIds,
      endedSessions: revoked.endedSessions,
      identifiers,
      subject,
      sessionsEnded: revoked.sessions,
      grantsRevoked: revoked.grants,
      auditEventsPseudonymised: pseudonymised,
      messagesDeleted: messages.count,
    };
  }, TRANSACTION);
  const { grantIds, endedSessions, identifiers, ...result } = report;
  // The apps of the ended sessions are told (back-channel logout) after the commit, as for any revocation.
  await deps.revokeElsewhere({ grantIds, endedSessions });
  await forgetCountersInRedis(deps, identifiers);
  return result;
}

const globEscaped = (text: string) => text.replace(/[*?[\]\\]/g, '\\$&');

/** Whether `name` is a whole part of a counter's key (`<budget>:<subject…>`), not a piece of another name. */
const namesAsPart = (key: string, name: string) => key.toLowerCase().split(':').includes(name);

/**
 * Rate-limit and failure counters in Redis whose key names the user (their id, an address or number
 * a code went to). A failure is reported, not thrown: the erasure has committed, and the counters
 * lapse within their window (an hour at most).
 */
async function forgetCountersInRedis(deps: ErasureDependencies, names: string[]): Promise<void> {
  try {
    const client = typeof deps.redis === 'function' ? await deps.redis() : deps.redis;
    if (!client) return;
    // SCAN patterns are not prefixed by ioredis, the keys it returns are, and DEL prefixes them again.
    const prefix = client.options.keyPrefix ?? '';
    for (const name of names) {
      const pattern = `${globEscaped(prefix)}*${globEscaped(name)}*`;
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
        cursor = next;
        const naming = keys.map((key) => key.slice(prefix.length)).filter((key) => namesAsPart(key, name));
        if (naming.length > 0) await client.del(...naming);
      } while (cursor !== '0');
    }
  } catch (error) {
    deps.warn?.({ err: error }, 'counters of an erased user could not be cleared from Redis; they lapse within their window');
  }
}

/**
 * Everything that names the user as text: the id, sign-in address and name, user name, addresses,
 * numbers. `identifiers` are those that point to this user alone (all but the display name, which
 * another person may share, or be a piece of: "Anna" in "Hanna", "Anna Svensson").
 */
async function namesOf(tx: Prisma.TransactionClient, userId: string): Promise<{ names: string[]; identifiers: string[] }> {
  const user = await tx.user.findUniqueOrThrow({
    where: { id: userId },
    include: { emails: { select: { address: true } }, phones: { select: { e164: true } }, invitation: { select: { address: true } } },
  });
  const identifiers = searchableNames([
    user.id,
    user.email,
    user.username,
    user.invitation?.address,
    ...user.emails.map((row) => row.address),
    ...user.phones.map((row) => row.e164),
  ]);
  return { names: searchableNames([...identifiers, user.name]), identifiers };
}

type AuditRow = { id: bigint; user_id: string | null; data: unknown };

/**
 * The user's own events lose their user id, IP address and browser, their personal fields and every
 * mention of any of the user's names, and take the pseudonym. Any other event (another account's change
 * of address, a failed sign-in typed with one of the user's addresses) keeps its owner, IP address,
 * browser and personal fields, and loses only whole mentions of the user's identifiers (maskMentions):
 * erasing anna@x.se leaves hanna@x.se's events as they were.
 */
async function pseudonymiseAuditEvents(
  tx: Prisma.TransactionClient,
  userId: string,
  subject: string,
  { names, identifiers }: { names: string[]; identifiers: string[] },
): Promise<number> {
  // A candidate merely contains an identifier; maskMentions decides whether it names the user.
  const rows = await tx.$queryRaw<AuditRow[]>`
    SELECT id, user_id, data FROM audit_events
    WHERE user_id = ${userId}::uuid
       OR EXISTS (SELECT 1 FROM unnest(${identifiers}::text[]) AS name WHERE strpos(lower(data::text), name) > 0)`;
  let own = 0;
  for (const row of rows) {
    if (row.user_id === userId) {
      own++;
      const details = scrubDetails(row.data ?? {}, names) as Record<string, unknown>;
      await tx.auditEvent.update({ where: { id: row.id }, data: { userId: null, ip: null, userAgent: null, data: { ...details, subject } } });
      continue;
    }
    const masked = maskMentions(row.data, identifiers);
    if (JSON.stringify(masked) !== JSON.stringify(row.data)) await tx.auditEvent.update({ where: { id: row.id }, data: { data: masked as object } });
  }
  return own;
}

/** The user disabled and due for erasure at `dueAt`; their sessions and tokens end now. */
export async function scheduleDeletion(
  deps: ErasureDependencies,
  userId: string,
  dueAt: Date,
  context: AuditContext & { actor: string },
): Promise<{ sessionsEnded: number }> {
  const revoked = await deps.prisma.$transaction(async (tx) => {
    await tx.user.update({ where: { id: userId }, data: { status: 'disabled', deletionDueAt: dueAt } });
    await tx.rememberedBrowser.updateMany({ where: { userId, revokedAt: null }, data: { revokedAt: new Date() } });
    const revoked = await revokeUserAccess(tx, userId);
    await deps.audit.within(tx).record('user.deletion_scheduled', {
      userId,
      data: { due: dueAt.toISOString(), actor: context.actor, sessionsEnded: revoked.sessions, grantsRevoked: revoked.grants },
      ip: context.ip,
      userAgent: context.userAgent,
    });
    return revoked;
  });
  await deps.revokeElsewhere(revoked);
  return { sessionsEnded: revoked.sessions };
}

export const GRACE_ENDED_REASON = 'the user asked to delete the account; the grace period ended';

/** The sweep's part: erases every account whose grace period has ended. Returns how many. */
export async function eraseDueAccounts(deps: ErasureDependencies, now = new Date()): Promise<number> {
  const due = await deps.prisma.user.findMany({ where: { deletionDueAt: { lte: now } }, select: { id: true }, orderBy: { deletionDueAt: 'asc' }, take: 100 });
  let erased = 0;
  for (const { id } of due) {
    try {
      await eraseUser(deps, id, { actor: 'user', reason: GRACE_ENDED_REASON, dueBy: now });
      erased++;
    } catch (error) {
      // Another node erased it first, or the deletion was cancelled meanwhile.
      if (error instanceof NyckelError && error.code === 'not_found') continue;
      // One account that cannot be erased now does not hold up the others; it is tried at the next sweep.
      deps.warn?.({ err: error, userId: id }, 'an account due for erasure could not be erased; trying again at the next sweep');
    }
  }
  return erased;
}
