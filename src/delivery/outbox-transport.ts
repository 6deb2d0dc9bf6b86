import { SettingsError } from '../config/settings.ts';
import type { MailMessage, MailTransport } from './transport.ts';

/**
 * The development outbox: sending does nothing, because the `deliveries` row the dispatcher marks as
 * sent IS the outbox (shown at /dev/outbox). Refuses to exist when NODE_ENV=production, so mail can
 * never silently vanish in production.
 */
export class OutboxTransport implements MailTransport {
  readonly name = 'outbox' as const;

  constructor(options: { production: boolean }) {
    if (options.production || process.env.NODE_ENV === 'production') {
      throw new SettingsError(['NYCKEL_MAIL_TRANSPORT: the dev outbox is refused when NODE_ENV=production; configure smtp or sendgrid']);
    }
  }

  async send(_message: MailMessage): Promise<void> {}
}
