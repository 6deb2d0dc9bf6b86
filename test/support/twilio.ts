import http from 'node:http';
import type { AddressInfo } from 'node:net';
import twilio from 'twilio';
import type RequestClient from 'twilio/lib/base/RequestClient.js';

type RequestOptions<T> = RequestClient.RequestOptions<T>;

export const TWILIO_SID = 'AC' + '0123456789abcdef'.repeat(2);
export const TWILIO_TOKEN = 'fake-auth-token-0123456789';
export const TWILIO_VERIFY_SID = 'VA' + 'fedcba9876543210'.repeat(2);

export interface TwilioRequest {
  method: string;
  path: string;
  authorization?: string;
  form: Record<string, string>;
  /** Set when the fake held this request without answering (`hangNext`). */
  hung?: true;
}

/**
 * A fake of Twilio's Messages API and Verify API on loopback. Messages are recorded; Verify makes a
 * code per number (readable as `verifyCodes`) and approves it once. `failNext` answers the next
 * requests with the given HTTP status (a provider outage); `hangNext(n)` reads the next n requests
 * and never answers them (a provider that hangs), until `close()`. `delayMs` makes every answer wait
 * that long (a slow provider).
 */
export async function startFakeTwilio() {
  const requests: TwilioRequest[] = [];
  const verifyCodes = new Map<string, string>();
  const failNext: number[] = [];
  let hanging = 0;
  let counter = 0;
  const timing = { delayMs: 0 };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const form = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
      const path = new URL(req.url!, 'http://fake').pathname;
      const request: TwilioRequest = { method: req.method!, path, authorization: req.headers.authorization, form };
      requests.push(request);
      if (hanging > 0) {
        hanging--;
        request.hung = true;
        return;
      }
      const reply = (status: number, body: unknown) => {
        const answer = () => {
          res.statusCode = status;
          res.setHeader('Content-Type', 'application/json');
          res.end(JSON.stringify(body));
        };
        if (timing.delayMs > 0) setTimeout(answer, timing.delayMs);
        else answer();
      };
      const failure = failNext.shift();
      if (failure)
        return reply(failure, { code: 20500, message: 'Internal Server Error', status: failure, more_info: 'https://www.twilio.com/docs/errors/20500' });
      const sid = `${++counter}`.padStart(32, '0');
      if (req.method === 'POST' && /^\/2010-04-01\/Accounts\/AC\w+\/Messages\.json$/.test(path)) {
        return reply(201, { sid: `SM${sid}`, status: 'queued', to: form.To, from: form.From ?? null, body: form.Body });
      }
      if (req.method === 'POST' && /^\/v2\/Services\/VA\w+\/Verifications$/.test(path)) {
        if (!verifyCodes.has(form.To)) verifyCodes.set(form.To, String(100000 + Math.floor(Math.random() * 900000)));
        return reply(201, { sid: `VE${sid}`, to: form.To, channel: form.Channel, status: 'pending', valid: false });
      }
      if (req.method === 'POST' && /^\/v2\/Services\/VA\w+\/VerificationCheck$/.test(path)) {
        const expected = verifyCodes.get(form.To);
        if (!expected) return reply(404, { code: 20404, message: 'The requested resource was not found', status: 404 });
        if (form.Code !== expected) return reply(200, { sid: `VE${sid}`, to: form.To, status: 'pending', valid: false });
        verifyCodes.delete(form.To);
        return reply(200, { sid: `VE${sid}`, to: form.To, status: 'approved', valid: true });
      }
      reply(404, { code: 20404, message: 'not found', status: 404 });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    baseUrl,
    requests,
    verifyCodes,
    failNext,
    /** Milliseconds every answer waits from now on (0: at once). */
    slow: (delayMs: number) => {
      timing.delayMs = delayMs;
    },
    hangNext: (times = 1) => {
      hanging += times;
    },
    /** The real SDK's HTTP client, with every request sent to this fake instead of *.twilio.com. */
    httpClient: () => new LoopbackRequestClient(baseUrl),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export class LoopbackRequestClient extends twilio.RequestClient {
  constructor(private readonly baseUrl: string) {
    super();
  }

  override request<TData>(opts: RequestOptions<TData>) {
    const original = new URL(opts.uri);
    return super.request<TData>({ ...opts, uri: `${this.baseUrl}${original.pathname}${original.search}` });
  }
}
