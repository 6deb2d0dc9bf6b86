import sendgridClient from '@sendgrid/client';
import sendgridMail from '@sendgrid/mail';
import { MailTransportError, scrubSecrets, senderOf, type MailMessage, type MailTransport } from './transport.ts';

type MailService = typeof sendgridMail;
type Client = typeof sendgridClient;
// Instances of our own (not the SDK's module-level singletons), so several transports can coexist.
const { MailService: MailServiceClass } = sendgridMail as unknown as { MailService: new () => MailService };
const { Client: ClientClass } = sendgridClient as unknown as { Client: new () => Client };

/** Mail through SendGrid's v3 API (POST /v3/mail/send) with the official SDK. */
export class SendgridTransport implements MailTransport {
  readonly name = 'sendgrid' as const;
  private readonly mail: MailService;
  private readonly apiKey: string;

  /** `baseUrl`: https://api.sendgrid.com, https://api.eu.sendgrid.com, or a test double. */
  constructor(options: { apiKey: string; baseUrl: string; timeoutMs?: number }) {
    this.apiKey = options.apiKey;
    const client = new ClientClass();
    // setApiKey resets the base URL to the region's host, so the base URL is set after it.
    client.setApiKey(options.apiKey);
    client.setDefaultRequest('baseUrl', options.baseUrl);
    this.mail = new MailServiceClass();
    this.mail.setClient(client);
    this.mail.setTimeout(options.timeoutMs ?? 30_000);
  }

  async send(message: MailMessage): Promise<void> {
    const sender = senderOf(message);
    try {
      await this.mail.send({
        to: message.to,
        from: typeof sender === 'string' ? sender : { name: sender.name, email: sender.address },
        subject: message.subject,
        text: message.text,
        ...(message.html !== undefined ? { html: message.html } : {}),
        // Click tracking would rewrite sign-in links through SendGrid's redirector.
        trackingSettings: { clickTracking: { enable: false, enableText: false }, openTracking: { enable: false } },
      });
    } catch (error) {
      throw new MailTransportError(scrubSecrets(describe(error), [this.apiKey]));
    }
  }
}

const hints: Record<number, string> = {
  401: ' (check SENDGRID_API_KEY)',
  403: ' (the API key may lack the mail.send permission, or the sender identity is not verified)',
};

function describe(error: unknown): string {
  const e = error as { code?: unknown; message?: unknown; response?: { body?: unknown } };
  // @sendgrid/client's ResponseError: code is the HTTP status, message its status text.
  if (typeof e?.code === 'number' && e.response) {
    const body = e.response.body as { errors?: Array<{ message?: unknown; field?: unknown }> } | undefined;
    const details = Array.isArray(body?.errors)
      ? body.errors
          .map((item) => [item.message, item.field].filter((part) => typeof part === 'string' && part).join(' — '))
          .filter(Boolean)
          .join('; ')
      : '';
    const status = `HTTP ${e.code}${typeof e.message === 'string' && e.message ? ` ${e.message}` : ''}`;
    return `SendGrid answered ${status}${hints[e.code] ?? ''}${details ? `: ${details}` : ''}`;
  }
  // Network failures (axios): a code such as ECONNREFUSED or ECONNABORTED, and a short message.
  const code = typeof e?.code === 'string' ? `${e.code} ` : '';
  const text = typeof e?.message === 'string' ? e.message : 'request failed';
  return `SendGrid request failed: ${code}${text}`;
}
