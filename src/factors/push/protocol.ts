import crypto from 'node:crypto';
import { z } from 'zod';

/**
 * The wire protocol between Nyckel and Nyckel Authenticator (the PWA in interactions/authenticator/,
 * and the tests' device simulator). Everything the device signs or MACs is a canonical string built
 * here; the app (device.js, requests.js) builds the same strings byte for byte.
 *
 * - Device key: ECDSA P-256, made by WebCrypto on the phone (non-extractable); signatures are
 *   WebCrypto's raw r||s (IEEE P1363), verified here with node:crypto.
 * - PIN: never stored anywhere. At registration the app sends the PIN once with a random salt; the
 *   server refuses trivial PINs, derives pinKey = PBKDF2-SHA256(PIN, salt, 20 000) and keeps only
 *   pinKey (sealed). The phone keeps only the salt, so a stolen phone cannot test PINs offline: each
 *   guess is an approval the server counts against the failure lock. (The iteration count is modest
 *   on purpose: a PIN's few digits are protected by that lock and the sealing, not by stretching, and
 *   each approval pays the derivation on the phone.)
 * - App + QR (offline): code = RFC 4226 dynamic truncation of HMAC-SHA256(qrSecret, challenge text
 *   + "\n" + the PIN proof of the text), 8 digits; qrSecret is made by the server at registration and
 *   kept on the phone as a non-extractable HMAC key. The app asks for the PIN before it shows a code,
 *   and the PIN is in the code: a phone without its PIN shows only wrong codes, and a PIN can still
 *   only be tested against the server (each wrong code counts against the failure lock).
 */
export const PIN_ITERATIONS = 20_000;
export const QR_CODE_DIGITS = 8;
/** v2: the code includes the PIN (v1 codes, without it, are no longer made or accepted). */
export const QR_PREFIX = 'nyckel-qr-v2:';

const b64url = z.string().regex(/^[A-Za-z0-9_-]+$/);

export const publicKeyJwk = z.object({
  kty: z.literal('EC'),
  crv: z.literal('P-256'),
  x: b64url.length(43),
  y: b64url.length(43),
});
export type PublicKeyJwk = z.infer<typeof publicKeyJwk>;

export const pushSubscription = z.object({
  endpoint: z.url().max(2048),
  keys: z.object({ p256dh: b64url.max(200), auth: b64url.max(100) }),
});
export type PushSubscriptionJson = z.infer<typeof pushSubscription>;

/** Fewer than 4 digits, all the same digit, or a run up or down (1234, 9876, 0123…) is refused. */
export function isTrivialPin(pin: string): boolean {
  if (!/^\d{4,12}$/.test(pin)) return true;
  const digits = [...pin].map(Number);
  const steps = digits.slice(1).map((d, i) => (d - digits[i] + 10) % 10);
  return steps.every((s) => s === 0) || steps.every((s) => s === 1) || steps.every((s) => s === 9);
}

export function derivePinKey(pin: string, salt: Buffer): Buffer {
  return crypto.pbkdf2Sync(pin, salt, PIN_ITERATIONS, 32, 'sha256');
}

/** What proves the PIN for one request: HMAC(pinKey, purpose and the request's id). */
export function pinProof(pinKey: Buffer, purpose: 'approve' | 'transfer' | 'biometric' | 'qr', value: string): string {
  return crypto.createHmac('sha256', pinKey).update(`nyckel-pin-v1\n${purpose}\n${value}`).digest('base64url');
}

export interface ApprovalFields {
  challengeId: string;
  deviceId: string;
  decision: 'approve' | 'deny';
  number: string;
  notMe: boolean;
  pinProof: string;
}

export const canonical = {
  approval: (a: ApprovalFields) => ['nyckel-approval-v1', a.challengeId, a.deviceId, a.decision, a.number, a.notMe ? 'not-me' : '', a.pinProof].join('\n'),
  /** Listing the requests waiting for a device; `time` (ms since 1970) keeps an old one from being replayed much later. */
  pending: (deviceId: string, time: number) => ['nyckel-pending-v1', deviceId, String(time)].join('\n'),
  transfer: (deviceId: string, time: number, proof: string) => ['nyckel-transfer-v1', deviceId, String(time), proof].join('\n'),
  /** A new Web Push subscription of the phone (the app sends it when it opens). */
  subscription: (deviceId: string, time: number, endpoint: string) => ['nyckel-subscription-v1', deviceId, String(time), endpoint].join('\n'),
  /** Setting up fingerprint or face instead of the PIN (the PIN proves it is the owner). */
  biometric: (deviceId: string, time: number, proof: string) => ['nyckel-biometric-setup-v1', deviceId, String(time), proof].join('\n'),
};

/** Verifies a WebCrypto ECDSA P-256/SHA-256 signature (raw r||s, base64url). */
export function verifySignature(jwk: PublicKeyJwk, message: string, signature: string): boolean {
  try {
    const key = crypto.createPublicKey({ key: { ...jwk }, format: 'jwk' });
    const raw = Buffer.from(signature, 'base64url');
    if (raw.length !== 64) return false;
    return crypto.verify('sha256', Buffer.from(message), { key, dsaEncoding: 'ieee-p1363' }, raw);
  } catch {
    return false;
  }
}

/** The one-time code of the offline QR mode: the QR secret's HMAC of the text and of the PIN's proof of it. */
export function qrCode(secrets: { qrSecret: Buffer; pinKey: Buffer }, challengeText: string): string {
  const proof = pinProof(secrets.pinKey, 'qr', challengeText);
  const mac = crypto.createHmac('sha256', secrets.qrSecret).update(`${challengeText}\n${proof}`).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const binary = ((mac[offset] & 0x7f) << 24) | (mac[offset + 1] << 16) | (mac[offset + 2] << 8) | mac[offset + 3];
  return String(binary % 10 ** QR_CODE_DIGITS).padStart(QR_CODE_DIGITS, '0');
}

/** The payload of a Web Push sent to the devices (encrypted aes128gcm by web-push). */
export interface PushPayload {
  type: 'approval';
  challengeId: string;
  client: string;
  time: string;
  expiresAt: string;
  /** A summary of the requesting browser ("Firefox on Windows"). */
  browser: string;
  /** The requesting address, approximate (a /24 or /48 network). */
  ip: string;
  /** Three numbers; the one the sign-in page shows is among them. */
  numbers: string[];
}

/** "Chrome on macOS": enough to recognise one's own browser, nothing more. */
export function browserSummary(userAgent: string | undefined): string {
  const ua = userAgent ?? '';
  const browser = /Edg\//.test(ua)
    ? 'Edge'
    : /OPR\//.test(ua)
      ? 'Opera'
      : /Firefox\//.test(ua)
        ? 'Firefox'
        : /Chrom(e|ium)\//.test(ua)
          ? 'Chrome'
          : /Safari\//.test(ua)
            ? 'Safari'
            : /node|undici/i.test(ua)
              ? 'Script'
              : 'Browser';
  const os = /Windows/.test(ua)
    ? 'Windows'
    : /Android/.test(ua)
      ? 'Android'
      : /iPhone|iPad/.test(ua)
        ? 'iOS'
        : /Mac OS X/.test(ua)
          ? 'macOS'
          : /Linux/.test(ua)
            ? 'Linux'
            : '';
  return os ? `${browser} / ${os}` : browser;
}

/** The network of an address: 203.0.113.7 → 203.0.113.0/24; IPv6 → its /48. */
export function approximateIp(ip: string): string {
  const v4 = /^(?:::ffff:)?(\d+)\.(\d+)\.(\d+)\.\d+$/.exec(ip);
  if (v4) return `${v4[1]}.${v4[2]}.${v4[3]}.0/24`;
  if (ip.includes(':')) {
    const parts = ip.split('::')[0].split(':').filter(Boolean).slice(0, 3);
    return `${parts.join(':')}::/48`;
  }
  return '';
}
