import type { UnsignedMail } from '../branding/mail-branding.ts';
import { NyckelError } from '../errors.ts';
import type { User } from '../generated/prisma/client.ts';
import { translator } from '../i18n/i18n.ts';
import { supportedLocales, type Locale } from '../i18n/locales.ts';
import { randomToken, type SecretBox } from '../security/crypto.ts';
import type { PrismaClient } from '../storage/db.ts';
import { accountName } from './accounts.ts';
import type { AuditContext, AuditLog } from './audit.ts';
import { databaseOnly, revokedCounts, revokeUserAccess, type RevokeElsewhere } from './revoke-access.ts';

/** Queues a mail in the caller's transaction (the delivery dispatcher sends it), and wakes the dispatcher. */
export interface InvitationMail {
  enqueue(tx: Pick<PrismaClient, 'delivery'>, mail: UnsignedMail): Promise<unknown>;
  kick(): void;
}

export interface InvitationSettings {
  /** The issuer in force: the link is built from it, never from a request. */
  issuer: string;
  ttlSeconds: number;
  defaultLocale: Locale;
  /** The service's name in the subject (NYCKEL_BRAND_NAME); default Nyckel. */
  service?: string;
}

/** The path of an invitation link; the token follows. */
export const INVITATION_PATH = '/invite';

/**
 * Invitations instead of operator-chosen passwords: a single-use link by mail (a keyed hash at rest,
 * NYCKEL_INVITATION_TTL), one per user (inviting again replaces it). Opening it lets the person choose
 * a password and signs them in to the account pages; the address it went to is then verified.
 */
export class Invitations {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly box: SecretBox,
    private readonly audit: AuditLog,
    private readonly mail: InvitationMail,
    private readonly settings: InvitationSettings,
    /** Where revoked grants' tokens outside the database go (Redis, when the nodes use it). */
    private readonly revokeElsewhere: RevokeElsewhere = databaseOnly,
  ) {}

  private hash(token: string): string {
    return this.box.mac('invitation', token);
  }

  /** Sends (or sends again) the user's invitation; where it went and until when it works. */
  async invite(user: User, context: AuditContext & { actor: string }): Promise<{ to: string; expiresAt: Date }> {
    // A link by mail that sets the password and signs in would let the mailbox alone past an app, a
    // passkey or a phone: those users recover with "Forgot your password?", which asks for them.
    const [enrolments, phones] = await Promise.all([
      this.prisma.factorEnrolment.count({ where: { userId: user.id, confirmed: true } }),
      this.prisma.userPhone.count({ where: { userId: user.id, verifiedAt: { not: null } } }),
    ]);
    if (enrolments + phones > 0) {
      throw new NyckelError(
        'conflict',
        `${accountName(user)} already has a second factor: an invitation would let the mailbox alone replace the password; the user can use "Forgot your password?", or reset-factors first`,
      );
    }
    const to = user.email ?? (await this.prisma.userEmail.findFirst({ where: { userId: user.id }, orderBy: { createdAt: 'asc' } }))?.address;
    if (!to) throw new NyckelError('conflict', `${accountName(user)} has no email address to send an invitation to`);
    const token = randomToken(32);
    const expiresAt = new Date(Date.now() + this.settings.ttlSeconds * 1000);
    const locale = supportedLocales.includes(user.locale as Locale) ? (user.locale as Locale) : this.settings.defaultLocale;
    await this.prisma.$transaction(async (tx) => {
      const row = { tokenHash: this.hash(token), address: to, expiresAt, usedAt: null, createdAt: new Date() };
      await tx.invitation.upsert({ where: { userId: user.id }, create: { userId: user.id, ...row }, update: row });
      await this.mail.enqueue(tx, this.message(user, to, token, locale));
      await this.audit
        .within(tx)
        .record('user.invited', { userId: user.id, data: { to, expiresAt: expiresAt.toISOString(), actor: context.actor }, ...context });
    });
    this.mail.kick();
    return { to, expiresAt };
  }

  /** The user an unused, unexpired invitation is for; undefined for any other token. */
  async userOf(token: string): Promise<User | undefined> {
    if (!/^[A-Za-z0-9_-]{20,100}$/.test(token)) return undefined;
    const row = await this.prisma.invitation.findUnique({ where: { tokenHash: this.hash(token) }, include: { user: true } });
    if (!row || row.usedAt || row.expiresAt <= new Date() || row.user.status !== 'active') return undefined;
    return row.user;
  }

  /**
   * Uses the invitation once (of parallel requests exactly one wins): the chosen password becomes the
   * user's, the address the link went to is verified, and, as with any new password, other sessions,
   * relying parties' tokens and remembered browsers end, all in one transaction. Undefined when it was
   * used or has expired, or the account is no longer active.
   */
  async accept(token: string, passwordHash: string, context: AuditContext): Promise<User | undefined> {
    if (!/^[A-Za-z0-9_-]{20,100}$/.test(token)) return undefined;
    const accepted = await this.prisma.$transaction(async (tx) => {
      const now = new Date();
      const { count } = await tx.invitation.updateMany({
        // Only while the account is active: one disabled (or closed, pending deletion) after the page checked gets no password.
        where: { tokenHash: this.hash(token), usedAt: null, expiresAt: { gt: now }, user: { status: 'active' } },
        data: { usedAt: now },
      });
      if (count !== 1) return undefined;
      const invitation = await tx.invitation.findUniqueOrThrow({ where: { tokenHash: this.hash(token) } });
      const user = await tx.user.update({ where: { id: invitation.userId }, data: { passwordHash, passwordChangedAt: now } });
      await tx.userEmail.upsert({
        where: { userId_address: { userId: user.id, address: invitation.address } },
        create: { userId: user.id, address: invitation.address, verifiedAt: now },
        update: { verifiedAt: now },
      });
      await tx.rememberedBrowser.updateMany({ where: { userId: user.id, revokedAt: null }, data: { revokedAt: now } });
      const revoked = await revokeUserAccess(tx, user.id);
      await this.audit
        .within(tx)
        .record('user.invitation_accepted', { userId: user.id, data: { address: invitation.address, ...revokedCounts(revoked) }, ...context });
      return { user, revoked };
    });
    if (!accepted) return undefined;
    await this.revokeElsewhere(accepted.revoked);
    return accepted.user;
  }

  private message(user: User, to: string, token: string, locale: Locale) {
    const t = translator(locale);
    const days = Math.max(1, Math.round(this.settings.ttlSeconds / 86400));
    const text = [
      t('mail.greeting'),
      '',
      t('invitation.mail_text', { user: accountName(user), days }),
      '',
      `${this.settings.issuer}${INVITATION_PATH}/${token}`,
      '',
      t('invitation.mail_not_you'),
    ].join('\n');
    return { to, subject: t('invitation.mail_subject', { service: this.settings.service ?? 'Nyckel' }), text, purpose: 'invitation', locale };
  }
}
