import type { PrismaClient } from '../storage/db.ts';
import type { Logger } from '../logger.ts';

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
  | 'user.email_added'
  | 'user.email_removed'
  | 'user.email_verified'
  | 'user.browsers_forgotten'
  | 'keys.rotated'
  | 'logout'
  | 'factor.verified'
  | 'factor.failed'
  | 'factor.enrolled'
  /** New recovery codes (shown once to the user; only their hashes are kept). */
  | 'recovery-codes.generated'
  | 'mfa.remembered_browser'
  | 'mfa.unavailable'
  | 'user.phone_added'
  | 'user.phone_removed'
  | 'user.phone_verified'
  /** SMS pumping protection refused a send (country or hourly budget); the provider was not called. */
  | 'sms.refused'
  /** The SMS provider refused or failed a send. */
  | 'sms.failed';

export class AuditLog {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly logger?: Logger,
  ) {}

  async record(type: AuditType, event: { userId?: string | null; data?: Record<string, unknown> } & AuditContext = {}) {
    const { userId = null, data = {}, ip, userAgent } = event;
    this.logger?.info({ audit: type, userId, ip, ...data }, 'security event');
    await this.prisma.auditEvent.create({
      data: { type, userId, ip: ip ?? null, userAgent: userAgent?.slice(0, 512) ?? null, data: data as object },
    });
  }
}
