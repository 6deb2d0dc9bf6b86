import twilio from 'twilio';
import { withoutBodyContent } from '../../delivery/sealed-body.ts';
import { SmsTransportError, type SmsTextTransport, type SmsVerifyTransport, type TwilioClientOptions, type TwilioSettings } from './transport.ts';

/**
 * The Twilio transports themselves, imported by src/factors/sms/transport.ts at the first send (this
 * module loads Twilio's SDK). The settings were checked there: credentials, and a sender or a Verify
 * service.
 */

const DEFAULT_TIMEOUT_MS = 10_000;

function twilioClient(settings: TwilioSettings, options: TwilioClientOptions) {
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
export function twilioMessaging(settings: TwilioSettings, options: TwilioClientOptions = {}): SmsTextTransport {
  const client = twilioClient(settings, options);
  const from = settings.from!;
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
export function twilioVerify(settings: TwilioSettings, options: TwilioClientOptions = {}): SmsVerifyTransport {
  const client = twilioClient(settings, options);
  const sid = settings.verifyServiceSid!;
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
