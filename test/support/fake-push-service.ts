import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';

/** http_ece ships no types; the one function used here. */
const ece = createRequire(import.meta.url)('http_ece') as {
  decrypt(buffer: Buffer, params: { version: 'aes128gcm'; privateKey: crypto.ECDH; authSecret: string }): Buffer;
};

export interface Subscriber {
  /** The subscription as a browser's PushManager gives it (endpoint, p256dh, auth). */
  subscription: { endpoint: string; keys: { p256dh: string; auth: string } };
  /** Called with each decrypted message. */
  onMessage: (payload: string) => void;
}

export interface ReceivedPush {
  id: string;
  ttl: string | null;
  urgency: string | null;
  /** The VAPID JWT's claims, once its signature was checked against `k`. */
  vapid: { aud: string; sub: string; exp: number };
  payload: string;
}

/**
 * A push service on loopback speaking the Web Push wire protocol (RFC 8030): each subscription is an
 * endpoint URL; a POST must carry a valid VAPID authorisation (RFC 8292: `vapid t=<ES256 JWT>, k=<key>`)
 * and an aes128gcm body (RFC 8188/8291), which is decrypted here with the subscriber's ECDH private key
 * and auth secret, exactly as a browser would, and handed to the subscriber. 201 on delivery, 410 for
 * an unknown (unsubscribed) endpoint, 400/401 for a bad message.
 */
export class FakePushService {
  private server?: http.Server;
  private url = '';
  private readonly subscribers = new Map<string, { ecdh: crypto.ECDH; auth: Buffer; onMessage: (payload: string) => void }>();
  readonly received: ReceivedPush[] = [];
  readonly rejected: { id: string; status: number; reason: string }[] = [];

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const { status, reason } = this.deliver(req, Buffer.concat(chunks));
        res.statusCode = status;
        res.end(reason);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop() {
    await new Promise<void>((resolve) => {
      this.server?.close(() => resolve());
      this.server?.closeAllConnections();
    });
  }

  /** A new subscription, as PushManager.subscribe() would make: its keys are the subscriber's. */
  subscribe(onMessage: (payload: string) => void): Subscriber {
    const id = crypto.randomBytes(12).toString('base64url');
    const ecdh = crypto.createECDH('prime256v1');
    ecdh.generateKeys();
    const auth = crypto.randomBytes(16);
    this.subscribers.set(id, { ecdh, auth, onMessage });
    return {
      subscription: { endpoint: `${this.url}/push/${id}`, keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: auth.toString('base64url') } },
      onMessage,
    };
  }

  unsubscribe(endpoint: string) {
    this.subscribers.delete(endpoint.split('/').pop()!);
  }

  private deliver(req: http.IncomingMessage, body: Buffer): { status: number; reason: string } {
    const id = /^\/push\/([A-Za-z0-9_-]+)$/.exec(req.url ?? '')?.[1] ?? '';
    const reject = (status: number, reason: string) => {
      this.rejected.push({ id, status, reason });
      return { status, reason };
    };
    const subscriber = this.subscribers.get(id);
    if (req.method !== 'POST' || !subscriber) return reject(410, 'no such subscription');
    if (req.headers['content-encoding'] !== 'aes128gcm') return reject(400, 'content-encoding must be aes128gcm');
    const vapid = verifyVapid(req.headers.authorization ?? '', this.url);
    if (!vapid) return reject(401, 'bad VAPID authorization');
    let payload: string;
    try {
      payload = ece.decrypt(body, { version: 'aes128gcm', privateKey: subscriber.ecdh, authSecret: subscriber.auth.toString('base64url') }).toString('utf8');
    } catch {
      return reject(400, 'cannot decrypt');
    }
    this.received.push({ id, ttl: req.headers.ttl as string | null, urgency: (req.headers.urgency as string) ?? null, vapid, payload });
    queueMicrotask(() => subscriber.onMessage(payload));
    return { status: 201, reason: '' };
  }
}

/** Checks `vapid t=<JWT>, k=<public key>`: ES256 signature by k, audience this service, not expired. */
function verifyVapid(header: string, audience: string): ReceivedPush['vapid'] | undefined {
  const match = /^vapid t=([A-Za-z0-9_.-]+),\s*k=([A-Za-z0-9_-]+)$/.exec(header);
  if (!match) return undefined;
  const [head, claims, signature] = match[1].split('.');
  const raw = Buffer.from(match[2], 'base64url');
  if (raw.length !== 65 || raw[0] !== 4) return undefined;
  const key = crypto.createPublicKey({
    key: { kty: 'EC', crv: 'P-256', x: raw.subarray(1, 33).toString('base64url'), y: raw.subarray(33).toString('base64url') },
    format: 'jwk',
  });
  const ok = crypto.verify('sha256', Buffer.from(`${head}.${claims}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(signature, 'base64url'));
  if (!ok) return undefined;
  const parsed = JSON.parse(Buffer.from(claims, 'base64url').toString('utf8')) as { aud: string; sub: string; exp: number };
  if (parsed.aud !== audience || parsed.exp * 1000 < Date.now()) return undefined;
  return parsed;
}
