import { createTransport } from 'nodemailer';
import { MailTransportError, scrubSecrets, senderOf, type MailMessage, type MailTransport } from './transport.ts';

/** Mail through an SMTP server named by a URL: smtp://user:pass@host:587 (STARTTLS when offered) or smtps://…:465. */
export class SmtpTransport implements MailTransport {
  readonly name = 'smtp' as const;
  private readonly transporter: ReturnType<typeof createTransport>;
  private readonly secrets: string[];

  constructor(smtpUrl: string, options: { timeoutMs?: number } = {}) {
    const timeout = options.timeoutMs ?? 30_000;
    // Bounded waits, so a hung server cannot hold a delivery (and shutdown) for nodemailer's default
    // ten minutes. Parameters in the URL's query string still win.
    this.transporter = createTransport({
      url: smtpUrl,
      connectionTimeout: timeout,
      greetingTimeout: timeout,
      socketTimeout: 2 * timeout,
    });
    this.secrets = secretsOf(smtpUrl);
  }

  async send(message: MailMessage): Promise<void> {
    let info: { rejected?: unknown[] };
    try {
      info = (await this.transporter.sendMail({
        from: senderOf(message),
        to: message.to,
        subject: message.subject,
        text: message.text,
        ...(message.html !== undefined ? { html: message.html } : {}),
      })) as { rejected?: unknown[] };
    } catch (error) {
      throw new MailTransportError(scrubSecrets(`SMTP: ${describe(error)}`, this.secrets));
    }
    if (info.rejected?.length) throw new MailTransportError('SMTP: the server refused the recipient');
  }

  close(): void {
    this.transporter.close();
  }
}

function describe(error: unknown): string {
  // Duck-typed: errors from node's socket layer may come from another realm (e.g. under jest).
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  const text = typeof message === 'string' && message ? message : 'send failed';
  return typeof code === 'string' && code && !text.includes(code) ? `${code} ${text}` : text;
}

/** The URL itself and its password, in case a library ever echoes them. */
function secretsOf(smtpUrl: string): string[] {
  const secrets = [smtpUrl];
  try {
    const url = new URL(smtpUrl);
    if (url.password) secrets.push(url.password, decodeURIComponent(url.password));
  } catch {
    // settings already checked the scheme; an unparseable URL fails at the first send
  }
  return secrets.filter((s) => s.length >= 3);
}
