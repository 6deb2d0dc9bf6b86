import { randomUUID } from 'node:crypto';
import twilio from 'twilio';
import type { Settings } from '../../config/settings.ts';
import type { Metrics } from '../../observability/metrics.ts';
import type { PrismaClient } from '../../storage/db.ts';
import type { SecretBox } from '../../security/crypto.ts';
import { sealDeliveryBody, withoutBodyContent } from '../../delivery/sealed-body.ts';

/**
 * How an SMS leaves Nyckel. Two shapes: a `text` transport sends a text Nyckel wrote (with Nyckel's
 * own code, checked against the ChallengeStore hash); a `verify` transport lets the provider make,
 * send and check the code (Twilio Verify). Sends are synchronous: a code lives five minutes, so a
 * failed send is reported to the user at once rather than queued and retried.
 */
export type SmsTransport = SmsTextTransport | SmsVerifyTransport;

export interface SmsTextTransport {
  readonly kind: 'text';
  readonly name: 'outbox' | 'twilio';
  /** Sends now, or throws SmsTransportError. */
  send(message: { to: string; body: string; purpose: string }): Promise<void>;
}

export interface SmsVerifyTransport {
  readonly kind: 'verify';
  readonly name: 'twilio-verify';
  /** Asks the provider to send its code to `to`; throws SmsTransportError. */
  start(input: { to: string; locale: string }): Promise<void>;
  /** Whether the provider accepts `code` for `to` now; throws SmsTransportError when it cannot tell. */
  check(input: { to: string; code: string }): Promise<boolean>;
}

/** A failed send, with a message safe to log (no credentials, no text body). */
export class SmsTransportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SmsTransportError';
  }
}

export const SMS_CHANNEL = 'sms';

/** The database and master key the dev outbox keeps its texts with (sealed, as every delivery body). */
export interface SmsOutboxStore {
  prisma: PrismaClient;
  box: SecretBox;
}

/** Development: the text is kept as a `deliveries` row (channel `sms`, body sealed) and shown at /dev/outbox. */
export function outboxSmsTransport({ prisma, box }: SmsOutboxStore): SmsTextTransport {
  return {
    kind: 'text',
    name: 'outbox',
    send: async ({ to, body, purpose }) => {
      const id = randomUUID();
      await prisma.delivery.create({
        data: {
          id,
          channel: SMS_CHANNEL,
          transport: 'outbox',
          recipient: to,
          body: sealDeliveryBody(box, id, { text: body }),
          purpose,
          status: 'sent',
          attempts: 1,
          sentAt: new Date(),
        },
      });
    },
  };
}

export interface TwilioClientOptions {
  /** Tests pass a `twilio.RequestClient` subclass here that sends to a loopback fake. */
  httpClient?: twilio.RequestClient;
  /** How long each request may wait for Twilio (NYCKEL_SMS_TIMEOUT_MS). Default 10000. */
  timeoutMs?: number;
}

type TwilioSettings = Settings['sms']['twilio'];

const DEFAULT_TIMEOUT_MS = 10_000;

function twilioClient(settings: TwilioSettings, options: TwilioClientOptions) {
  if (!settings.accountSid || !settings.authToken) throw new Error('TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are required for the Twilio SMS transports');
  const timeout = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  // No retries: the user is waiting, and a code that arrives late is worth little. The timeout keeps the page responsive.
  const client = twilio(settings.accountSid, settings.authToken, {
    autoRetry: false,
    timeout,
    ...(options.httpClient ? { httpClient: options.httpClient } : {}),
  });
  // The SDK gives `timeout` only to a RequestClient it makes itself; a client passed in (the tests'
  // loopback one) would keep its own 30 s default. Every request carries the timeout instead.
  const request = client.request.bind(client);
  client.request = (opts) => request({ ...opts, timeout: opts.timeout ?? timeout });
  return client;
}

/** Twilio's error, reduced to status, code and message (never the request, which carries the credentials). */
function providerError(error: unknown, secrets: Array<string | undefined>): SmsTransportError {
  const { status, code, message } = (error ?? {}) as { status?: unknown; code?: unknown; message?: unknown };
  // A hung Twilio: axios (inside Twilio's RequestClient) gives up with ECONNABORTED ("timeout of …ms exceeded").
  const timedOut = code === 'ECONNABORTED' || code === 'ETIMEDOUT';
  let text = `twilio: ${timedOut ? 'no answer ' : ''}${typeof status === 'number' ? `HTTP ${status} ` : ''}${typeof code === 'number' || typeof code === 'string' ? `(${code}) ` : ''}${typeof message === 'string' ? message : 'request failed'}`;
  for (const secret of secrets) if (secret) text = text.split(secret).join('[redacted]');
  text = text.replace(/\s+/g, ' ').trim();
  return new SmsTransportError(text.length > 300 ? `${text.slice(0, 299)}…` : text);
}

/** Twilio Programmable Messaging: TWILIO_FROM is a sending number, or a messaging service SID (MG…). */
export function twilioSmsTransport(settings: TwilioSettings, options: TwilioClientOptions = {}): SmsTextTransport {
  const client = twilioClient(settings, options);
  const from = settings.from;
  if (!from) throw new Error('TWILIO_FROM is required for the twilio SMS transport');
  const sender = /^MG[0-9a-fA-F]{32}$/.test(from) ? { messagingServiceSid: from } : { from };
  return {
    kind: 'text',
    name: 'twilio',
    send: async ({ to, body }) => {
      try {
        await client.messages.create({ to, body, ...sender });
      } catch (error) {
        // An error that quotes the text back would put its code in the log.
        const failure = providerError(error, [settings.authToken]);
        throw new SmsTransportError(withoutBodyContent(failure.message, { text: body }));
      }
    },
  };
}

/** Twilio Verify: Twilio makes the code, sends it in its own words, and checks it. */
export function twilioVerifySmsTransport(settings: TwilioSettings, options: TwilioClientOptions = {}): SmsVerifyTransport {
  const client = twilioClient(settings, options);
  const sid = settings.verifyServiceSid;
  if (!sid) throw new Error('TWILIO_VERIFY_SERVICE_SID is required for the twilio-verify SMS transport');
  const service = () => client.verify.v2.services(sid);
  return {
    kind: 'verify',
    name: 'twilio-verify',
    start: async ({ to, locale }) => {
      try {
        await service().verifications.create({ to, channel: 'sms', locale });
      } catch (error) {
        throw providerError(error, [settings.authToken]);
      }
    },
    check: async ({ to, code }) => {
      try {
        const result = await service().verificationChecks.create({ to, code });
        return result.status === 'approved';
      } catch (error) {
        // 404: no pending verification (already approved, expired, or too many checks): the code is not accepted.
        if ((error as { status?: number }).status === 404) return false;
        throw providerError(error, [settings.authToken, code]);
      }
    },
  };
}

/** The same transport, counting each send (or Verify start) as sent or failed in nyckel_deliveries_total. */
export function withDeliveryCounts(transport: SmsTransport | undefined, metrics: Pick<Metrics, 'delivery'>): SmsTransport | undefined {
  if (!transport) return undefined;
  const counted = async (send: () => Promise<void>) => {
    try {
      await send();
      metrics.delivery('sms', transport.name, 'sent');
    } catch (error) {
      metrics.delivery('sms', transport.name, 'failed');
      throw error;
    }
  };
  return transport.kind === 'text'
    ? { kind: 'text', name: transport.name, send: (message) => counted(() => transport.send(message)) }
    : { kind: 'verify', name: transport.name, start: (input) => counted(() => transport.start(input)), check: (input) => transport.check(input) };
}

/**
 * The transport named by the settings, or undefined when SMS cannot be sent: the dev outbox is
 * refused in production (the SMS method is then unavailable).
 */
export function createSmsTransport(
  settings: Pick<Settings, 'sms' | 'production'>,
  outbox: SmsOutboxStore,
  options: TwilioClientOptions = {},
): SmsTransport | undefined {
  switch (settings.sms.transport) {
    case 'twilio':
      return twilioSmsTransport(settings.sms.twilio, { ...options, timeoutMs: settings.sms.timeoutMs });
    case 'twilio-verify':
      return twilioVerifySmsTransport(settings.sms.twilio, { ...options, timeoutMs: settings.sms.timeoutMs });
    default:
      return settings.production || process.env.NODE_ENV === 'production' ? undefined : outboxSmsTransport(outbox);
  }
}
