import { randomUUID } from 'node:crypto';
import type twilio from 'twilio';
import type { Settings } from '../../config/settings.ts';
import type { Metrics } from '../../observability/metrics.ts';
import type { PrismaClient } from '../../storage/db.ts';
import type { SecretBox } from '../../security/crypto.ts';
import { sealDeliveryBody } from '../../delivery/sealed-body.ts';

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

export type TwilioSettings = Settings['sms']['twilio'];

/** Twilio's SDK (and axios under it) is imported at the first send, not at start: most nodes never text. */
const sdk = () => import('./twilio-transport.ts');

function requireCredentials(settings: TwilioSettings): void {
  if (!settings.accountSid || !settings.authToken) throw new Error('TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are required for the Twilio SMS transports');
}

/** Twilio Programmable Messaging: TWILIO_FROM is a sending number, or a messaging service SID (MG…). */
export function twilioSmsTransport(settings: TwilioSettings, options: TwilioClientOptions = {}): SmsTextTransport {
  requireCredentials(settings);
  if (!settings.from) throw new Error('TWILIO_FROM is required for the twilio SMS transport');
  let loaded: Promise<SmsTextTransport> | undefined;
  return {
    kind: 'text',
    name: 'twilio',
    send: async (message) => {
      loaded ??= sdk().then((twilio) => twilio.twilioMessaging(settings, options));
      return (await loaded).send(message);
    },
  };
}

/** Twilio Verify: Twilio makes the code, sends it in its own words, and checks it. */
export function twilioVerifySmsTransport(settings: TwilioSettings, options: TwilioClientOptions = {}): SmsVerifyTransport {
  requireCredentials(settings);
  if (!settings.verifyServiceSid) throw new Error('TWILIO_VERIFY_SERVICE_SID is required for the twilio-verify SMS transport');
  let loaded: Promise<SmsVerifyTransport> | undefined;
  const transport = () => (loaded ??= sdk().then((twilio) => twilio.twilioVerify(settings, options)));
  return {
    kind: 'verify',
    name: 'twilio-verify',
    start: async (input) => (await transport()).start(input),
    check: async (input) => (await transport()).check(input),
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
