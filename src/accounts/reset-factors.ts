import { NyckelError } from '../errors.ts';
import type { PrismaClient } from '../storage/db.ts';
import type { AuditContext, AuditLog } from './audit.ts';
import { revokeUserAccess, type RevokeElsewhere } from './revoke-access.ts';

export interface ResetFactorsOptions extends AuditContext {
  /** Why (a help-desk ticket, "lost phone", …): kept in the audit event. Required. */
  reason: string;
  /** Who: `cli`, an admin API client id, or `user` for the user's own "delete all my devices". */
  actor: string;
  /** The oidc-provider session (its uid) to keep: the user's own, when they reset from it. */
  keepSessionUid?: string;
}

export interface ResetFactorsResult {
  /** Second-factor enrolments of every type (TOTP, passkeys, recovery codes, push devices, BankID, …). */
  factors: number;
  phones: number;
  rememberedBrowsers: number;
  challenges: number;
  sessions: number;
  /** Grants of relying parties revoked, with their refresh tokens, access tokens and codes. */
  grants: number;
}

/**
 * Puts a user back to "password only": every second-factor enrolment, phone number, remembered
 * browser, pending factor challenge, sign-in session and grant of a relying party (with its refresh
 * and access tokens) goes, in one transaction with its audit event, so a failure leaves everything
 * as it was (tokens kept in Redis are cleared, and the apps of the ended sessions told, by `revokeElsewhere` right after). Email addresses
 * stay (they are contact details, and the way the user is reached to enrol again). Used by the CLI,
 * the admin API and the user's own "delete all my devices".
 */
export async function resetSecondFactors(
  prisma: PrismaClient,
  audit: AuditLog,
  userId: string,
  options: ResetFactorsOptions,
  revokeElsewhere: RevokeElsewhere,
): Promise<ResetFactorsResult> {
  const reason = options.reason.trim();
  if (!reason) throw new NyckelError('invalid_input', 'a reason is required to reset the second factors of a user');
  const now = new Date();
  const { result, revoked } = await prisma.$transaction(async (tx) => {
    // Lock the user row: a parallel enrolment waits for the reset instead of slipping in between.
    const locked = await tx.$queryRaw<Array<{ id: string }>>`SELECT id FROM users WHERE id = ${userId}::uuid FOR UPDATE`;
    if (locked.length === 0) throw new NyckelError('not_found', 'no such user');
    const factors = await tx.factorEnrolment.deleteMany({ where: { userId } });
    const phones = await tx.userPhone.deleteMany({ where: { userId } });
    const browsers = await tx.rememberedBrowser.updateMany({ where: { userId, revokedAt: null }, data: { revokedAt: now } });
    const challenges = await tx.factorChallenge.deleteMany({ where: { userId, consumedAt: null } });
    const revoked = await revokeUserAccess(tx, userId, { keepSessionUid: options.keepSessionUid });
    const result: ResetFactorsResult = {
      factors: factors.count,
      phones: phones.count,
      rememberedBrowsers: browsers.count,
      challenges: challenges.count,
      sessions: revoked.sessions,
      grants: revoked.grants,
    };
    await audit.within(tx).record('user.factors_reset', {
      userId,
      ip: options.ip,
      userAgent: options.userAgent,
      data: { reason, actor: options.actor, removed: result },
    });
    return { result, revoked };
  });
  await revokeElsewhere(revoked);
  return result;
}
