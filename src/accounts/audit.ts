import type { PrismaClient } from '../storage/db.ts';
import type { Logger } from '../logger.ts';
import { driverIfClient } from '../storage/sql.ts';

export interface AuditContext {
  ip?: string;
  userAgent?: string;
}

export type AuditType =
  | 'login.succeeded'
  | 'login.failed'
  | 'login.throttled'
  | 'user.created'
  | 'user.disabled'
  | 'user.enabled'
  | 'user.password_changed'
  /** An imported password hash (bcrypt, PBKDF2, …) replaced by argon2id at a sign-in (`from`: its scheme). */
  | 'user.password_rehashed'
  | 'user.email_added'
  | 'user.email_removed'
  | 'user.email_verified'
  | 'user.browsers_forgotten'
  | 'keys.rotated'
  /** The account pages (/account): signing in, and every change a user makes there. */
  | 'account.signed_in'
  | 'account.method_added'
  | 'account.method_removed'
  | 'account.method_renamed'
  | 'account.methods_reordered'
  | 'account.sessions_ended'
  /** "Forgot your device?": an email code stood in for the client's second-factor methods. */
  | 'factor.fallback_used'
  | 'logout'
  | 'factor.verified'
  | 'factor.failed'
  | 'factor.enrolled'
  /** A second factor removed (an operator unbinding a BankID personal number, …). */
  | 'factor.removed'
  /** New recovery codes (shown once to the user; only their hashes are kept). */
  | 'recovery-codes.generated'
  | 'mfa.remembered_browser'
  | 'mfa.unavailable'
  | 'user.phone_added'
  | 'user.phone_removed'
  | 'user.phone_verified'
  /** SMS pumping protection refused a send (country, cooldown or hourly budget); the provider was not called. */
  | 'sms.refused'
  /** A mail of a code or link refused (cooldown or hourly budget); nothing was queued. */
  | 'mail.refused'
  /** The SMS provider refused or failed a send. */
  | 'sms.failed'
  /** Every second factor, phone number, remembered browser and session of a user removed (reason, actor). */
  | 'user.factors_reset'
  /** An operator cleared a user's second-factor failure locks and password throttle. */
  | 'user.unlocked'
  /** An operator changed a user's sign-in address (from, to). */
  | 'user.email_changed'
  | 'user.username_changed'
  | 'user.password_reset'
  /** The user asked to delete the account: disabled now, erased when the grace period ends (due). */
  | 'user.deletion_scheduled'
  /** The user downloaded their data ("Download my data"), or an operator exported it. */
  | 'user.data_exported'
  /** An account erased (reason, actor, the pseudonym its events now carry); recorded without a user. */
  | 'user.erased'
  | 'consent.granted'
  | 'user.invited'
  | 'user.invitation_accepted'
  | 'consent.revoked'
  | 'user.password_reset_requested'
  /** An operator imported users in bulk (counts; each created user also gets user.created). */
  | 'users.imported'
  /** Nyckel Authenticator: a phone registered (new, or moved to a new phone: the old key stops working). */
  | 'push.device_registered'
  | 'push.device_moved'
  /** The phone's fingerprint or face set up to approve instead of the PIN. */
  | 'push.biometric_added'
  /** A push sign-in request approved or denied on the phone; `push.reported` when denied as "not me". */
  | 'push.approved'
  | 'push.denied'
  | 'push.reported'
  /** An answer from the phone refused (wrong PIN, wrong number, bad signature, spent request). */
  | 'push.refused';

/** The part of a client or transaction the log writes to. */
export type AuditDb = Pick<PrismaClient, 'auditEvent'>;

export class AuditLog {
  constructor(
    private readonly prisma: AuditDb,
    private readonly logger?: Logger,
  ) {}

  /** The same log writing through a transaction, so the event commits (or not) with the change. */
  within(tx: AuditDb): AuditLog {
    return new AuditLog(tx, this.logger);
  }

  async record(type: AuditType, event: { userId?: string | null; data?: Record<string, unknown> } & AuditContext = {}) {
    const { userId = null, data = {}, ip, userAgent } = event;
    this.logger?.info({ audit: type, userId, ip, ...data }, 'security event');
    const row = { type, userId, ip: ip ?? null, userAgent: userAgent?.slice(0, 512) ?? null, data: data as object, createdAt: new Date() };
    // Outside a transaction straight through the driver (src/storage/sql.ts): every sign-in writes events.
    const sql = driverIfClient(this.prisma);
    if (!sql) {
      await this.prisma.auditEvent.create({ data: row });
      return;
    }
    await sql.changed`
      INSERT INTO audit_events (type, user_id, ip, user_agent, data, created_at)
      VALUES (${row.type}, ${row.userId}::uuid, ${row.ip}, ${row.userAgent}, ${JSON.stringify(row.data)}::jsonb, ${row.createdAt})`;
  }
}
