import type { Redis } from 'ioredis';
import type { Prisma } from '../generated/prisma/client.ts';

/**
 * Revoking what a user has been given: their sign-in sessions, the grants relying parties hold and
 * every token and code issued under those grants; the relying parties of the ended sessions are told
 * afterwards (RevokeElsewhere). Used when an operator disables a user, when the
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

/** A sign-in session that was ended: who, and the session id (sid) each relying party of it was given. */
export interface EndedSession {
  accountId: string;
  /** oidc-provider's per-client part of the session: `sid` is what the app's ID tokens named. */
  authorizations: Record<string, { sid?: string }>;
}

export interface RevokedAccess {
  /** Sign-in sessions ended. */
  sessions: number;
  /** Their accounts and per-app sids, to tell the apps (src/provider/logout-notices.ts). */
  endedSessions: EndedSession[];
  /** Grants of relying parties revoked (each with its refresh, access tokens and codes). */
  grants: number;
  /** Their ids, for the models kept outside the database (see RevokeElsewhere). */
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
  const endedSessions = endedSessionsOf(rows.filter((row) => row.type === 'Session' && !kept(row)).map((row) => row.payload));
  return { sessions: endedSessions.length, endedSessions, grants: grantIds.length, grantIds };
}

/**
 * The ended sessions, from the part of each Session row kept in clear (src/storage/oidc-at-rest.ts):
 * its account and its per-client `authorizations`.
 */
export function endedSessionsOf(payloads: unknown[]): EndedSession[] {
  return payloads.flatMap((payload) => {
    const { accountId, authorizations } = (payload ?? {}) as Partial<EndedSession>;
    return typeof accountId === 'string' ? [{ accountId, authorizations: authorizations ?? {} }] : [];
  });
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
  return { sessions: 0, endedSessions: [], grants: grantIds.length, grantIds };
}

/** What an audit event says was revoked. */
export const revokedCounts = (revoked: RevokedAccess) => ({ sessionsEnded: revoked.sessions, grantsRevoked: revoked.grants });

/** What a revocation left to do outside the database. */
export type Revoked = Pick<RevokedAccess, 'grantIds' | 'endedSessions'>;

/**
 * After the transaction that revoked: clears what revoked grants left outside the database (Redis)
 * and tells relying parties of the ended sessions (back-channel logout). Never throws.
 */
export type RevokeElsewhere = (revoked: Revoked) => Promise<void>;

/** Nothing is kept outside the database (no Redis) and nobody is told. */
export const databaseOnly: RevokeElsewhere = async () => {};

/** Each of the steps, one after the other. */
export function inTurn(...steps: RevokeElsewhere[]): RevokeElsewhere {
  return async (revoked) => {
    for (const step of steps) await step(revoked);
  };
}

export type Warn = (details: Record<string, unknown>, message: string) => void;

/**
 * The access tokens, codes and interactions of the grants in Redis (every Redis model of a grant is in
 * the grant's set). `redis` may be opened only when there is something to clear (the CLI). A failure
 * is reported, not thrown: the revocation has committed, and what is left is refused without its
 * grant and expires within its short lifetime.
 */
export function revokeGrantsInRedis(redis: Redis | (() => Promise<Redis | undefined>), warn?: Warn): RevokeElsewhere {
  return async ({ grantIds }) => {
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
