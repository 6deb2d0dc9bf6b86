import crypto from 'node:crypto';
import type { FakePushService, Subscriber } from './fake-push-service.ts';
import { SoftAuthenticator } from './soft-authenticator.ts';

const subtle = globalThis.crypto.subtle;
const encoder = new TextEncoder();
const b64url = (bytes: ArrayBuffer | Uint8Array) => Buffer.from(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes)).toString('base64url');

/** A push request as the phone receives it (the decrypted Web Push payload, or from /pending). */
export interface PushRequest {
  type?: 'approval';
  challengeId: string;
  client: string;
  time: string;
  expiresAt: string;
  browser: string;
  ip: string;
  numbers: string[];
}

export interface AnswerResult {
  status: number;
  body: { status?: string; error?: string; attemptsLeft?: number; retryAfterSeconds?: number };
}

/**
 * A phone running Nyckel Authenticator, in Node, speaking the same protocol as the web app
 * (interactions/authenticator/device.js, requests.js) with the same WebCrypto calls, written
 * independently of the server's protocol.ts so that the two are checked against each other: a
 * non-extractable ECDSA P-256 device key; PIN → PBKDF2-SHA256(20 000, the salt kept on the phone)
 * → HMAC proof per request (and in each offline QR code); the QR secret as a non-extractable HMAC
 * key; a Web Push subscription at the fake push service, whose decrypted messages land in `inbox`.
 */
export class DeviceSimulator {
  readonly inbox: PushRequest[] = [];
  private waiters: { match: (r: PushRequest) => boolean; resolve: (r: PushRequest) => void }[] = [];
  deviceId = '';
  name = '';
  private keys!: CryptoKeyPair;
  private qrKey!: CryptoKey;
  private pinSalt = new Uint8Array(16);
  subscriber?: Subscriber;
  /** The phone's platform authenticator (fingerprint, face), once set up. */
  biometric?: { authenticator: SoftAuthenticator; rpId: string };

  private constructor(readonly issuer: string) {}

  /**
   * Registers with the link of a QR code (`…/authenticator/#enrol=…` or `#transfer=…`), like the app
   * opened by that link. `push: undefined` registers without a subscription (no push service).
   */
  static async register(
    link: string,
    options: { pin: string; name?: string; push?: FakePushService; issuer?: string },
  ): Promise<{ device?: DeviceSimulator; status: number; body: Record<string, unknown> }> {
    const url = new URL(link);
    const token = /[#&](?:enrol|transfer)=([A-Za-z0-9_-]+)/.exec(url.hash)?.[1] ?? '';
    const device = new DeviceSimulator(options.issuer ?? url.origin);
    device.keys = await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
    globalThis.crypto.getRandomValues(device.pinSalt);
    if (options.push) device.subscriber = options.push.subscribe((payload) => device.received(JSON.parse(payload) as PushRequest));
    const publicKey = await subtle.exportKey('jwk', device.keys.publicKey);
    const response = await fetch(`${device.issuer}/authenticator/api/devices`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        token,
        name: options.name,
        publicKey: { kty: publicKey.kty, crv: publicKey.crv, x: publicKey.x, y: publicKey.y },
        subscription: device.subscriber?.subscription ?? null,
        pin: options.pin,
        pinSalt: b64url(device.pinSalt),
      }),
    });
    const body = (await response.json()) as Record<string, unknown>;
    if (response.status !== 201) return { status: response.status, body };
    device.deviceId = String(body.deviceId);
    device.name = String(body.name);
    device.qrKey = await subtle.importKey('raw', Buffer.from(String(body.qrSecret), 'base64url'), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    return { device, status: response.status, body };
  }

  private received(request: PushRequest) {
    const waiter = this.waiters.find((w) => w.match(request));
    if (waiter) {
      this.waiters = this.waiters.filter((w) => w !== waiter);
      waiter.resolve(request);
    } else this.inbox.push(request);
  }

  /** The next push request (optionally for one challenge), waiting for it to arrive. */
  nextRequest(challengeId?: string, timeoutMs = 5000): Promise<PushRequest> {
    const match = (r: PushRequest) => !challengeId || r.challengeId === challengeId;
    const queued = this.inbox.findIndex(match);
    if (queued >= 0) return Promise.resolve(this.inbox.splice(queued, 1)[0]);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no push request${challengeId ? ` for ${challengeId}` : ''} within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({ match, resolve: (r) => (clearTimeout(timer), resolve(r)) });
    });
  }

  private async sign(message: string): Promise<string> {
    return b64url(await subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, this.keys.privateKey, encoder.encode(message)));
  }

  private async pinProof(pin: string, purpose: 'approve' | 'transfer' | 'biometric' | 'qr', value: string): Promise<string> {
    const base = await subtle.importKey('raw', encoder.encode(pin), 'PBKDF2', false, ['deriveBits']);
    const bits = await subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt: this.pinSalt, iterations: 20_000 }, base, 256);
    const key = await subtle.importKey('raw', bits, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    return b64url(await subtle.sign('HMAC', key, encoder.encode(`nyckel-pin-v1\n${purpose}\n${value}`)));
  }

  private async post(path: string, body: unknown): Promise<AnswerResult> {
    const response = await fetch(`${this.issuer}/authenticator/api/${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as AnswerResult['body'] };
  }

  /** The signed body of an answer, without sending it (for replays and parallel sends). */
  async answerBody(request: Pick<PushRequest, 'challengeId'>, answer: { decision: 'approve' | 'deny'; number?: string; pin?: string; notMe?: boolean }) {
    const pinProof = answer.decision === 'approve' && answer.pin !== undefined ? await this.pinProof(answer.pin, 'approve', request.challengeId) : '';
    const fields = {
      challengeId: request.challengeId,
      deviceId: this.deviceId,
      decision: answer.decision,
      number: answer.number ?? '',
      notMe: answer.notMe ?? false,
      pinProof,
    };
    const signature = await this.sign(
      ['nyckel-approval-v1', fields.challengeId, fields.deviceId, fields.decision, fields.number, fields.notMe ? 'not-me' : '', fields.pinProof].join('\n'),
    );
    return { ...fields, signature };
  }

  async answer(
    request: Pick<PushRequest, 'challengeId'>,
    answer: { decision: 'approve' | 'deny'; number?: string; pin?: string; notMe?: boolean },
  ): Promise<AnswerResult> {
    return this.post('approve', await this.answerBody(request, answer));
  }

  sendAnswer(body: unknown): Promise<AnswerResult> {
    return this.post('approve', body);
  }

  /** The requests waiting for this phone, as the app lists them when opened. */
  async pending(): Promise<{ status: number; requests: PushRequest[] }> {
    const time = Date.now();
    const result = await this.post('pending', { deviceId: this.deviceId, time, signature: await this.sign(`nyckel-pending-v1\n${this.deviceId}\n${time}`) });
    return { status: result.status, requests: (result.body as { requests?: PushRequest[] }).requests ?? [] };
  }

  /** A new push subscription (the app sends its current one when it opens). */
  async resubscribe(push: FakePushService): Promise<AnswerResult> {
    const subscriber = push.subscribe((payload) => this.received(JSON.parse(payload) as PushRequest));
    const time = Date.now();
    const signature = await this.sign(`nyckel-subscription-v1\n${this.deviceId}\n${time}\n${subscriber.subscription.endpoint}`);
    const result = await this.post('subscription', { deviceId: this.deviceId, time, subscription: subscriber.subscription, signature });
    if (result.status === 200) this.subscriber = subscriber;
    return result;
  }

  /** "Move to a new phone": the link of the QR code the old phone shows. */
  async transferLink(pin: string): Promise<AnswerResult & { url?: string }> {
    const time = Date.now();
    const pinProof = await this.pinProof(pin, 'transfer', String(time));
    const result = await this.post('transfer', {
      deviceId: this.deviceId,
      time,
      pinProof,
      signature: await this.sign(`nyckel-transfer-v1\n${this.deviceId}\n${time}\n${pinProof}`),
    });
    return { ...result, url: (result.body as { url?: string }).url };
  }

  /** "Use fingerprint or face": WebAuthn creation options (signed, with the PIN), a platform credential, registered. */
  async enableBiometric(pin: string): Promise<AnswerResult> {
    const time = Date.now();
    const pinProof = await this.pinProof(pin, 'biometric', String(time));
    const options = await this.post('biometric/options', {
      deviceId: this.deviceId,
      time,
      pinProof,
      signature: await this.sign(`nyckel-biometric-setup-v1\n${this.deviceId}\n${time}\n${pinProof}`),
    });
    if (options.status !== 200) return options;
    const { setupId, options: creation } = options.body as unknown as {
      setupId: string;
      options: { challenge: string; rp: { id: string }; authenticatorSelection: { authenticatorAttachment: string; userVerification: string } };
    };
    const authenticator = new SoftAuthenticator(this.issuer, { userVerified: true });
    const result = await this.post('biometric', {
      setupId,
      deviceId: this.deviceId,
      credential: { ...authenticator.register(creation), authenticatorAttachment: 'platform' },
    });
    if (result.status === 201) this.biometric = { authenticator, rpId: creation.rp.id };
    return result;
  }

  /** An approval with the biometric instead of the PIN: an assertion over SHA-256(request, device, number). */
  async approveWithBiometric(request: Pick<PushRequest, 'challengeId'>, number: string, options: { signedNumber?: string } = {}): Promise<AnswerResult> {
    const { authenticator, rpId } = this.biometric!;
    const challenge = crypto
      .createHash('sha256')
      .update(`nyckel-biometric-v1\n${request.challengeId}\n${this.deviceId}\n${options.signedNumber ?? number}`)
      .digest('base64url');
    const body = await this.answerBody(request, { decision: 'approve', number });
    return this.sendAnswer({ ...body, assertion: authenticator.authenticate({ challenge, rpId }) });
  }

  /** The offline code for the text of a sign-in page's QR code and the PIN: RFC 4226 truncation of HMAC-SHA256(text, PIN proof), 8 digits. */
  async qrCode(challengeText: string, pin: string): Promise<string> {
    const proof = await this.pinProof(pin, 'qr', challengeText);
    const mac = new Uint8Array(await subtle.sign('HMAC', this.qrKey, encoder.encode(`${challengeText}\n${proof}`)));
    const offset = mac[mac.length - 1] & 0x0f;
    const binary = ((mac[offset] & 0x7f) << 24) | (mac[offset + 1] << 16) | (mac[offset + 2] << 8) | mac[offset + 3];
    return String(binary % 1e8).padStart(8, '0');
  }
}
