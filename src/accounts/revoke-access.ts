import type { Redis } from 'ioredis';
import type { Prisma } from '../generated/prisma/client.ts';

/**
 * Revoking what a user has been given: their sign-in sessions, the grants relying parties hold and
 * every token and code issued under those grants. Used when an operator disables a user, when the
 * second factors are reset (by an operator or "delete all my devices") and when the password changes.
 *
 * The database part runs in the caller's transaction, with the change that causes it. Sessions,
 * grants and refresh tokens are always in the database; access tokens and codes may be in Redis
 * (createHybridOidcAdapter), which cannot join the transaction: they are cleared right after the
 * commit. Until then (or if Redis fails) they are refused anyway, since oidc-provider looks up the
 * grant of every access token (userinfo, introspection) and code (token endpoint), and it is gone.
 */

/** The part of a client or transaction that revoking writes to. */
export type OidcModelDb = Pick<Prisma.TransactionClient, 'oidcModel'>;

export interface RevokedAccess {
  /** Sign-in sessions ended. */
  sessions: number;
  /** Grants of relying parties revoked (each with its refresh, access tokens and codes). */
  grants: number;
  /** Their ids, for the models kept outside the database (see RevokeGrantsElsewhere). */
  grantIds: string[];
}

export interface RevokeOptions {
  /** The session (its uid) to keep: the user's own, when the change is made from it. */
  keepSessionUid?: string;
}

/**
 * In the caller's transaction: deletes every oidc-provider model of the user (sessions except the one
 * kept, grants, refresh tokens, access tokens and codes kept in the database) and whatever else was
 * issued under their grants.
 */
export async function revokeUserAccess(tx: OidcModelDb, userId: string, options: RevokeOptions = {}): Promise<RevokedAccess> {
  const owned = { payload: { path: ['accountId'], equals: userId } };
  const rows = await tx.oidcModel.findMany({ where: owned, select: { type: true, id: true, uid: true, grantId: true, payload: true } });
  const kept = (row: { type: string; uid: string | null }) =>
    row.type === 'Session' && options.keepSessionUid !== undefined && row.uid === options.keepSessionUid;
  // A grant row's id is the grant id (also in its payload as jti); every other model names its grant.
  const grantIds = [
    ...new Set(rows.flatMap((row) => (row.type === 'Grant' ? [(row.payload as { jti?: string }).jti ?? row.id] : row.grantId ? [row.grantId] : []))),
  ];
  // (uid <> x is NULL for a row without a uid: name that case, or it would be kept.)
  const notKept = options.keepSessionUid ? { OR: [{ type: { not: 'Session' } }, { uid: null }, { uid: { not: options.keepSessionUid } }] } : {};
  await tx.oidcModel.deleteMany({
    where: { OR: [{ AND: [owned, notKept] }, { grantId: { in: grantIds } }] },
  });
  return { sessions: rows.filter((row) => row.type === 'Session' && !kept(row)).length, grants: grantIds.length, grantIds };
}

/**
 * In the caller's transaction: revokes the grants the user gave one relying party, with everything
 * issued under them (refresh and access tokens, codes); the user's sessions stay.
 */
export async function revokeClientAccess(tx: OidcModelDb, userId: string, clientId: string): Promise<RevokedAccess> {
  const grants = await tx.oidcModel.findMany({
    where: { type: 'Grant', AND: [{ payload: { path: ['accountId'], equals: userId } }, { payload: { path: ['clientId'], equals: clientId } }] },
    select: { id: true, payload: true },
  });
  const grantIds = grants.map((row) => (row.payload as { jti?: string }).jti ?? row.id);
  await tx.oidcModel.deleteMany({ where: { OR: [{ type: 'Grant', id: { in: grants.map((row) => row.id) } }, { grantId: { in: grantIds } }] } });
  return { sessions: 0, grants: grantIds.length, grantIds };
}

/** What an audit event says was revoked. */
export const revokedCounts = (revoked: RevokedAccess) => ({ sessionsEnded: revoked.sessions, grantsRevoked: revoked.grants });

/** Clears what revoked grants left outside the database, after the transaction that revoked them. */
export type RevokeGrantsElsewhere = (grantIds: string[]) => Promise<void>;

/** Nothing is kept outside the database (no Redis). */
export const databaseOnly: RevokeGrantsElsewhere = async () => {};

export type Warn = (details: Record<string, unknown>, message: string) => void;

/**
 * The access tokens, codes and interactions of the grants in Redis (every Redis model of a grant is in
 * the grant's set). `redis` may be opened only when there is something to clear (the CLI). A failure
 * is reported, not thrown: the revocation has committed, and what is left is refused without its
 * grant and expires within its short lifetime.
 */
export function revokeGrantsInRedis(redis: Redis | (() => Promise<Redis | undefined>), warn?: Warn): RevokeGrantsElsewhere {
  return async (grantIds) => {
    if (grantIds.length === 0) return;
    try {
      const client = typeof redis === 'function' ? await redis() : redis;
      if (!client) return;
      // Loaded here: the CLI imports this module with Accounts, and most commands never need oidc-provider.
      const { revokeGrantInRedis } = await import('../storage/oidc-redis-adapter.ts');
      for (const grantId of grantIds) await revokeGrantInRedis(client, grantId);
    } catch (error) {
      warn?.({ err: error, grants: grantIds.length }, 'revoked grants could not be cleared from Redis; their tokens are refused there and expire');
    }
  };
}
