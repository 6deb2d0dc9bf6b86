/** One outgoing mail, as a transport sends it. */
export interface MailMessage {
  to: string;
  /** NYCKEL_MAIL_FROM: an address, or `Name <address>`. */
  from: string;
  /** When set, the display name of the From instead of the one in `from`. */
  fromName?: string;
  subject: string;
  text: string;
  html?: string;
}

/** The address in `no-reply@x.se` or `Name <no-reply@x.se>`. */
export function addressOf(from: string): string {
  return /<([^<>]+)>\s*$/.exec(from)?.[1].trim() ?? from.trim();
}

/** The From as nodemailer and SendGrid take it: the address, and the display name when one is given. */
export function senderOf(message: Pick<MailMessage, 'from' | 'fromName'>): { name?: string; address: string } | string {
  return message.fromName ? { name: message.fromName, address: addressOf(message.from) } : message.from;
}

export type MailTransportName = 'smtp' | 'sendgrid' | 'outbox';

/** Sends one mail now, or throws. Retries, backoff and bookkeeping are the dispatcher's job. */
export interface MailTransport {
  readonly name: MailTransportName;
  send(message: MailMessage): Promise<void>;
}

/**
 * What a transport throws when a send fails. Its message is safe to store (`deliveries.last_error`)
 * and to log: it never carries credentials, request configuration or the mail body. It deliberately
 * has no `cause`, so that no logger serialises the SDK's error (axios errors carry the request
 * headers, Authorization included).
 */
export class MailTransportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MailTransportError';
  }
}

const MAX_ERROR_LENGTH = 500;

/** Replaces every occurrence of each secret (and its URL-encoded form) with `[redacted]`; caps the length. */
export function scrubSecrets(text: string, secrets: ReadonlyArray<string | undefined>): string {
  let out = text;
  for (const secret of secrets) {
    if (!secret) continue;
    for (const form of new Set([secret, encodeURIComponent(secret)])) out = out.split(form).join('[redacted]');
  }
  out = out.replace(/\s+/g, ' ').trim();
  return out.length > MAX_ERROR_LENGTH ? `${out.slice(0, MAX_ERROR_LENGTH - 1)}…` : out;
}
