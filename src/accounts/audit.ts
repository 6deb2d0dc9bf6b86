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
  | 'mfa.remembered_browser'
  | 'mfa.unavailable';

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
