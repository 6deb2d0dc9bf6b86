import { SettingsError, type Settings } from '../config/settings.ts';
import { OutboxTransport } from './outbox-transport.ts';
import { SendgridTransport } from './sendgrid-transport.ts';
import { SmtpTransport } from './smtp-transport.ts';
import type { MailTransport } from './transport.ts';

/** The transport named by `settings.mail.transport`. */
export function createMailTransport(settings: Pick<Settings, 'production' | 'mail'>): MailTransport {
  const { mail } = settings;
  switch (mail.transport) {
    case 'smtp':
      if (!mail.smtpUrl) throw new SettingsError(['NYCKEL_SMTP_URL: required for the smtp transport']);
      return new SmtpTransport(mail.smtpUrl, { timeoutMs: mail.timeoutMs });
    case 'sendgrid':
      if (!mail.sendgridApiKey) throw new SettingsError(['SENDGRID_API_KEY: required for the sendgrid transport']);
      return new SendgridTransport({ apiKey: mail.sendgridApiKey, baseUrl: mail.sendgridBaseUrl, timeoutMs: mail.timeoutMs });
    case 'outbox':
      return new OutboxTransport({ production: settings.production });
  }
}
