import { z } from 'zod';
import { NyckelError } from '../errors.ts';
import { acr } from './acr.ts';
import type { PrismaClient } from '../storage/db.ts';
import { driverOf, type SqlDriver } from '../storage/sql.ts';
import { splitUser, withUserSql } from '../accounts/user-rows.ts';
import { heldRowsColumn, parseHeldRows, type HeldRow } from './shared/held-enrolments.ts';
import type { User } from '../generated/prisma/client.ts';
import type { Channel } from './contract.ts';

const channels = ['knowledge', 'email', 'phone', 'app', 'device', 'eid', 'backup'] as const satisfies readonly Channel[];

const verifiedFactorSchema = z.object({
  factor: z.string(),
  channel: z.enum(channels),
  amr: z.array(z.string()),
  at: z.string(),
  /** The user this factor was verified for: every factor of a sign-in must be its user's. */
  userId: z.string(),
  /** Verified through "Forgot your device?" instead of one of the client's methods. */
  fallback: z.boolean().optional(),
  /** One step that is two factors by itself (a passkey with user verification). */
  multiFactor: z.boolean().optional(),
});
const verifiedListSchema = z.array(verifiedFactorSchema);

export type VerifiedFactor = z.infer<typeof verifiedFactorSchema>;

/** A sign-in whose first step is done: bound to one user, with the factors verified for that user. */
export interface SignInRecord {
  uid: string;
  userId: string;
  clientId: string;
  verified: VerifiedFactor[];
  expiresAt: Date;
  completedAt: Date | null;
  /** A new password chosen after "Forgot your password?" waits for the sign-in to end. */
  pendingPassword: boolean;
}

export interface LoginOutcome {
  accountId: string;
  acr: string;
  amr: string[];
}

/** Two factors count as two only when their channels differ; a passkey with user verification is two. */
export function factorStrength(verified: readonly VerifiedFactor[]): number {
  return new Set(verified.map((v) => v.channel)).size + (verified.some((v) => v.multiFactor) ? 1 : 0);
}

/** `acr` and `amr` for what was actually verified; never more. */
export function loginOutcome(accountId: string, verified: readonly VerifiedFactor[]): LoginOutcome {
  const amr = [...new Set(verified.flatMap((v) => v.amr))];
  const twoFactors = factorStrength(verified) >= 2;
  return {
    accountId,
    acr: !twoFactors ? acr.password : verified.some((v) => v.fallback) ? acr.fallback : acr.mfa,
    amr: twoFactors ? [...amr, 'mfa'] : amr,
  };
}

export const passwordFactor = (userId: string): VerifiedFactor => ({
  factor: 'password',
  channel: 'knowledge',
  amr: ['pwd'],
  at: new Date().toISOString(),
  userId,
});

/** JSON columns come back from raw queries as text or as values, depending on the driver. */
function parseVerified(value: unknown): VerifiedFactor[] {
  return verifiedListSchema.parse(typeof value === 'string' ? JSON.parse(value) : value);
}

/** A JSON column's value as read, for a comparison in SQL (not re-serialised from the parsed form, which drops unknown keys). */
function asJsonText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/**
 * A record as `complete` judges it: the columns its UPDATE compares, and whether the user is active.
 * Read by `complete`, or returned by the `record` that just wrote it in the same request.
 */
export interface SignInSnapshot {
  uid: string;
  userId: string;
  /** As the driver returned it (text or value): compared in SQL as it was read. */
  verified: unknown;
  expiresAt: Date;
  completedAt: Date | null;
  pendingPasswordHash: string | null;
  userActive: boolean;
}

/** What `record` leaves: the factors verified now, and the record as `complete` may judge it. */
export interface Recorded {
  verified: VerifiedFactor[];
  snapshot: SignInSnapshot;
}

const SNAPSHOT_COLUMNS = `uid, user_id::text AS "userId", verified, expires_at AS "expiresAt", completed_at AS "completedAt",
  pending_password_hash AS "pendingPasswordHash",
  EXISTS (SELECT 1 FROM users u WHERE u.id = sign_in_attempts.user_id AND u.status = 'active') AS "userActive"`;

interface Row {
  pendingPassword: boolean;
  uid: string;
  userId: string;
  clientId: string;
  verified: unknown;
  expiresAt: Date;
  completedAt: Date | null;
}

/**
 * The sign-in records (one per oidc-provider interaction). A record is bound to one user from the
 * moment the first step succeeds: a first step for another account starts a new, empty record; a
 * factor is added only for the user it was verified for, in one conditional UPDATE; and `complete`,
 * the one way to end a sign-in, re-checks under a row lock that every factor is its user's.
 */
export class SignIns {
  constructor(
    private readonly prisma: PrismaClient,
    /** Every statement but the sweep goes straight to the driver (src/storage/sql.ts): a sign-in runs several. */
    private readonly sql: SqlDriver = driverOf(prisma),
  ) {}

  /**
   * Binds the sign-in to `first.userId`. A live record of the same user is kept (adding `first`); one
   * of another user, or an expired one, is replaced by a new record; a completed one is refused.
   * Returns the record as written, for `complete` to judge without reading it again.
   */
  async begin(uid: string, clientId: string, expiresAt: Date, first: VerifiedFactor): Promise<SignInSnapshot> {
    const { rows } = await this.sql.query<SignInSnapshot>(
      `INSERT INTO sign_in_attempts (uid, user_id, client_id, verified, expires_at, created_at)
       VALUES ($1, $2::uuid, $3, $4::jsonb, $5, now())
       ON CONFLICT (uid) DO UPDATE
          SET user_id = EXCLUDED.user_id, client_id = EXCLUDED.client_id, verified = EXCLUDED.verified,
              expires_at = EXCLUDED.expires_at, created_at = now(), pending_password_hash = NULL
        WHERE sign_in_attempts.completed_at IS NULL
          AND (sign_in_attempts.user_id <> EXCLUDED.user_id OR sign_in_attempts.expires_at <= now())
       RETURNING ${SNAPSHOT_COLUMNS}`,
      [uid, first.userId, clientId, JSON.stringify([first]), expiresAt],
    );
    return rows[0] ?? (await this.record(uid, first)).snapshot;
  }

  /**
   * Keeps a new password chosen after "Forgot your password?" with the sign-in of `userId`; `finish`
   * sets it on the account only when the sign-in ends (after the second factor, where one is needed).
   */
  async setPendingPassword(uid: string, userId: string, passwordHash: string): Promise<void> {
    const count = await this.sql.changed`
      UPDATE sign_in_attempts SET pending_password_hash = ${passwordHash}
       WHERE uid = ${uid} AND user_id = ${userId}::uuid AND completed_at IS NULL AND expires_at > now()`;
    if (count !== 1) throw new NyckelError('session_expired');
  }

  async load(uid: string): Promise<SignInRecord | undefined> {
    const rows = await this.sql.rows<Row>`
      SELECT uid, user_id::text AS "userId", client_id AS "clientId", verified, expires_at AS "expiresAt", completed_at AS "completedAt",
             pending_password_hash IS NOT NULL AS "pendingPassword"
        FROM sign_in_attempts WHERE uid = ${uid}`;
    return rows[0] ? { ...rows[0], verified: parseVerified(rows[0].verified) } : undefined;
  }

  /**
   * `load`, with the record's user (null when the user is gone) and the user's confirmed enrolment rows
   * (as `heldRows` reads them) in the same statement.
   */
  async loadWithUser(uid: string): Promise<{ record: SignInRecord; user: User | null; held: HeldRow[] } | undefined> {
    const columns = `t.uid, t.user_id::text AS "userId", t.client_id AS "clientId", t.verified, t.expires_at AS "expiresAt",
      t.completed_at AS "completedAt", t.pending_password_hash IS NOT NULL AS "pendingPassword", ${heldRowsColumn('t.user_id')} AS "held"`;
    const { rows } = await this.sql.query<Row & { held: unknown } & Partial<User>>(withUserSql(columns, 'sign_in_attempts', 't.uid = $1'), [uid]);
    if (!rows[0]) return undefined;
    const { rest, user } = splitUser<Row & { held: unknown }>(rows[0]);
    const { held, ...record } = rest;
    return { record: { ...record, verified: parseVerified(record.verified) }, user, held: parseHeldRows(held) };
  }

  /**
   * Adds a verified factor to the sign-in, only while it is the live sign-in of the factor's user; a
   * factor of a channel already counted adds nothing (an email code cannot be both factors). Returns
   * the factors verified now (and the record as written); session_expired when the sign-in is no longer this user's.
   */
  async record(uid: string, factor: VerifiedFactor): Promise<Recorded> {
    const live = `uid = $1 AND user_id = $2::uuid AND completed_at IS NULL AND expires_at > now()`;
    const added = await this.sql.query<SignInSnapshot>(
      `UPDATE sign_in_attempts SET verified = verified || $3::jsonb WHERE ${live} AND NOT verified @> $4::jsonb RETURNING ${SNAPSHOT_COLUMNS}`,
      [uid, factor.userId, JSON.stringify([factor]), JSON.stringify([{ channel: factor.channel }])],
    );
    const snapshot =
      added.rows[0] ?? (await this.sql.query<SignInSnapshot>(`SELECT ${SNAPSHOT_COLUMNS} FROM sign_in_attempts WHERE ${live}`, [uid, factor.userId])).rows[0];
    if (!snapshot) throw new NyckelError('session_expired');
    return { verified: parseVerified(snapshot.verified), snapshot };
  }

  /**
   * Ends the sign-in of `userId` once, if `satisfied` accepts its factors: the record must still be this
   * user's, live, not completed, with every factor verified for this user, and the user active. The
   * record is read, judged, and marked completed only if it is still exactly what was judged (one
   * conditional UPDATE; a change in between, such as a factor added by a parallel request, is judged again).
   */
  async complete(
    uid: string,
    userId: string,
    /** `pendingPassword`: a new password waits to be set (the reset of "Forgot your password?"). */
    satisfied: (verified: VerifiedFactor[], pendingPassword: boolean) => boolean,
    /** The record as this request's `record` left it: judged first instead of reading it again. */
    known?: SignInSnapshot,
  ): Promise<{ verified: VerifiedFactor[]; completedAt: Date; pendingPasswordHash: string | null } | undefined> {
    let read = known?.uid === uid ? known : undefined;
    for (let judged = 0; judged < 3; judged++, read = undefined) {
      const row = read ?? (await this.sql.query<SignInSnapshot>(`SELECT ${SNAPSHOT_COLUMNS} FROM sign_in_attempts WHERE uid = $1`, [uid])).rows[0];
      if (!row || row.userId !== userId || !row.userActive || row.completedAt || row.expiresAt <= new Date()) return undefined;
      const verified = parseVerified(row.verified);
      if (verified.some((v) => v.userId !== userId) || !satisfied(verified, row.pendingPasswordHash !== null)) return undefined;
      const completedAt = new Date();
      const ended = await this.sql.changed`
        UPDATE sign_in_attempts SET completed_at = ${completedAt}, pending_password_hash = NULL
         WHERE uid = ${uid} AND user_id = ${userId}::uuid AND completed_at IS NULL AND expires_at > now()
           AND verified = ${asJsonText(row.verified)}::jsonb
           AND pending_password_hash IS NOT DISTINCT FROM ${row.pendingPasswordHash}
           AND EXISTS (SELECT 1 FROM users WHERE id = ${userId}::uuid AND status = 'active')`;
      if (ended === 1) return { verified, completedAt, pendingPasswordHash: row.pendingPasswordHash };
    }
    return undefined;
  }

  /** Gives a completion back when the interaction could not be finished after all (a store outage). */
  async reopen(uid: string, done: { completedAt: Date; pendingPasswordHash: string | null }): Promise<void> {
    await this.sql.changed`
      UPDATE sign_in_attempts SET completed_at = NULL, pending_password_hash = ${done.pendingPasswordHash}
       WHERE uid = ${uid} AND completed_at = ${done.completedAt}`;
  }

  async sweep(now = new Date()): Promise<number> {
    const { count } = await this.prisma.signInAttempt.deleteMany({ where: { expiresAt: { lte: now } } });
    return count;
  }
}
