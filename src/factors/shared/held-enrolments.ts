import { z } from 'zod';
import type { User } from '../../generated/prisma/client.ts';
import { driverOf, type SqlDriver } from '../../storage/sql.ts';
import type { PrismaClient } from '../../storage/db.ts';

/**
 * A method held as enrolment rows: the user holds it while a confirmed `factor_enrolments` row of
 * `type` is there (`unusedOnly`: one not used yet, as a recovery code). The engine then answers for
 * every such method of a sign-in from one read of the user's rows instead of asking each module.
 */
export interface HeldAs {
  type: string;
  unusedOnly?: boolean;
}

/** One confirmed enrolment row of a user, as the methods' order and `HeldAs` need it. */
export interface HeldRow {
  type: string;
  unused: boolean;
}

/** Every confirmed enrolment row of the user, in the order methods rank by (position, then newest first). */
export function heldRows(sql: SqlDriver, userId: string): Promise<HeldRow[]> {
  return sql.rows<HeldRow>`
    SELECT type, last_used_at IS NULL AS unused
      FROM factor_enrolments
     WHERE user_id = ${userId}::uuid AND confirmed = true
     ORDER BY position ASC, created_at DESC`;
}

const heldRowSchema = z.array(z.object({ type: z.string(), unused: z.boolean() }));

/** `heldRows` as one JSON column of another statement (`userId`: the SQL expression of the user's id). */
export function heldRowsColumn(userId: string): string {
  return `(SELECT COALESCE(json_agg(json_build_object('type', e.type, 'unused', e.last_used_at IS NULL) ORDER BY e.position ASC, e.created_at DESC), '[]')
             FROM factor_enrolments e WHERE e.user_id = ${userId} AND e.confirmed = true)`;
}

/** A `heldRowsColumn` as read (text or value, depending on the driver). */
export function parseHeldRows(value: unknown): HeldRow[] {
  return heldRowSchema.parse(typeof value === 'string' ? JSON.parse(value) : value);
}

export function holds(rows: readonly HeldRow[], as: HeldAs): boolean {
  return rows.some((row) => row.type === as.type && (!as.unusedOnly || row.unused));
}

/** Whether the user of a sign-in holds `as`: judged on the rows the request read at its start when it has them (`ChallengeContext.held`). */
export async function heldFor(prisma: PrismaClient, ctx: { user: Pick<User, 'id'>; held?: readonly HeldRow[] }, as: HeldAs): Promise<boolean> {
  return holds(ctx.held ?? (await heldRows(driverOf(prisma), ctx.user.id)), as);
}

/** A module's `heldAs` and the `isEnrolled` that follows from it, so the two cannot disagree. */
export function heldAs(prisma: PrismaClient, as: HeldAs): { heldAs: HeldAs; isEnrolled: (user: User) => Promise<boolean> } {
  return { heldAs: as, isEnrolled: async (user) => holds(await heldRows(driverOf(prisma), user.id), as) };
}
