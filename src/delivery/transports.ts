import { SettingsError, type Settings } from '../config/settings.ts';
import { OutboxTransport } from './outbox-transport.ts';
import type { MailTransport, MailMessage, MailTransportName } from './transport.ts';

/**
 * A provider's transport whose SDK (nodemailer, @sendgrid/*) is imported at its first send: a node
 * that never sends through it never loads it (memory and start time).
 */
export class LazyMailTransport implements MailTransport {
  private loading?: Promise<MailTransport>;

  constructor(
    readonly name: MailTransportName,
    private readonly load: () => Promise<MailTransport>,
  ) {}

  /** Whether the provider's SDK has been asked for yet (for tests). */
  get loaded(): boolean {
    return this.loading !== undefined;
  }

  async send(message: MailMessage): Promise<void> {
    this.loading ??= this.load();
    return (await this.loading).send(message);
  }

  /** Closes the provider's connections (SMTP keeps a pool), when it was loaded at all. */
  async close(): Promise<void> {
    const loaded: (MailTransport & { close?: () => void }) | undefined = await this.loading;
    loaded?.close?.();
  }
}

/** The transport named by `settings.mail.transport`. */
export function createMailTransport(settings: Pick<Settings, 'production' | 'mail'>): MailTransport {
  const { mail } = settings;
  switch (mail.transport) {
    case 'smtp': {
      const smtpUrl = mail.smtpUrl;
      if (!smtpUrl) throw new SettingsError(['NYCKEL_SMTP_URL: required for the smtp transport']);
      return new LazyMailTransport('smtp', async () => {
        const { SmtpTransport } = await import('./smtp-transport.ts');
        return new SmtpTransport(smtpUrl, { timeoutMs: mail.timeoutMs });
      });
    }
    case 'sendgrid': {
      const apiKey = mail.sendgridApiKey;
      if (!apiKey) throw new SettingsError(['SENDGRID_API_KEY: required for the sendgrid transport']);
      return new LazyMailTransport('sendgrid', async () => {
        const { SendgridTransport } = await import('./sendgrid-transport.ts');
        return new SendgridTransport({ apiKey, baseUrl: mail.sendgridBaseUrl, timeoutMs: mail.timeoutMs });
      });
    }
    case 'outbox':
      return new OutboxTransport({ production: settings.production });
  }
}
