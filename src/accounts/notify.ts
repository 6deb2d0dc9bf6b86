import { noticeAddressOf } from './notice-address.ts';
import { accountName } from './accounts.ts';
import type { Locale } from './accounts.ts';
import { signMail, type MailBrand } from '../branding/mail-branding.ts';
import { enqueueMail } from '../delivery/dispatcher.ts';
import type { User } from '../generated/prisma/client.ts';
import { translator } from '../i18n/i18n.ts';
import type { SecretBox } from '../security/crypto.ts';
import type { PrismaClient } from '../storage/db.ts';

/** What changed, as a key under `account.notice` in the locales (`method_added`, `password_changed`, …). */
export type AccountChange =
  | 'method_added'
  | 'method_removed'
  | 'method_renamed'
  | 'methods_reordered'
  | 'password_changed'
  | 'recovery_codes'
  | 'sessions_ended'
  | 'browsers_forgotten'
  | 'contact_added'
  | 'contact_removed'
  | 'devices_deleted'
  | 'forgot_device_used'
  | 'password_reset'
  | 'consent_revoked'
  | 'deletion_scheduled';

/**
 * Tells the user by email that their account changed ("a new sign-in method was added…"), so that a
 * change they did not make is noticed. Queued with the change's own audit trail; sent by the dispatcher.
 */
export class AccountNotifier {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly box: SecretBox,
    private readonly kick: () => void,
    /** Names the service in the subject, and signs the mail with who sent it and how to reach support. */
    private readonly branding: MailBrand,
  ) {}

  async notify(user: User, locale: Locale, change: AccountChange, values: Record<string, string | number> = {}) {
    const to = await noticeAddressOf(this.prisma, user);
    if (!to) return;
    const t = translator(locale);
    const text = [
      t('mail.greeting'),
      '',
      t(`account.notice.${change}`, { user: accountName(user), ...values }),
      '',
      t('account.notice.when', { when: new Date().toISOString().replace('T', ' ').slice(0, 16) + ' UTC' }),
      '',
      t('account.notice.not_you'),
    ].join('\n');
    const purpose = `account-${change.replaceAll('_', '-')}`;
    await enqueueMail(
      this.prisma,
      this.box,
      signMail(this.branding, { to, subject: t('account.notice.subject', { service: this.branding.name }), text, purpose, locale }),
    );
    this.kick();
  }
}
