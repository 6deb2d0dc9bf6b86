import { randomUUID } from 'node:crypto';
import { z } from 'zod';

/**
 * An authenticator app brought along in an import: `totp_secret` (base32) and optionally
 * `totp_digits` (6 or 8), `totp_period` (seconds) and `totp_algorithm` (sha1, sha256, sha512; Keycloak's
 * HmacSHA1 … too). It becomes a confirmed `totp` enrolment, its secret sealed as a new one's is;
 * parameters other than Nyckel's (SHA-1, 6 digits, 30 s) are kept in the enrolment's data.
 */

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export function base32Encode(bytes: Uint8Array): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return bits > 0 ? out + BASE32[(value << (5 - bits)) & 31] : out;
}

/** The secret's length in bytes: 80 bits (Google Authenticator's) at the least. */
const MIN_SECRET_BYTES = 10;
/** otplib's largest. */
const MAX_SECRET_BYTES = 64;

export const totpSecretSchema = z
  .string()
  .transform((value) => value.replace(/[\s-]/g, '').replace(/=+$/, '').toUpperCase())
  .pipe(
    z
      .string()
      .regex(/^[A-Z2-7]+$/, { message: 'is not base32 (A–Z, 2–7)', abort: true })
      .refine((value) => Math.floor((value.length * 5) / 8) >= MIN_SECRET_BYTES, `is shorter than ${MIN_SECRET_BYTES} bytes (16 base32 characters)`)
      .refine((value) => Math.floor((value.length * 5) / 8) <= MAX_SECRET_BYTES, `is longer than ${MAX_SECRET_BYTES} bytes (102 base32 characters)`),
  );

const algorithms = new Map<string, 'sha1' | 'sha256' | 'sha512'>([
  ['sha1', 'sha1'],
  ['hmacsha1', 'sha1'],
  ['sha256', 'sha256'],
  ['hmacsha256', 'sha256'],
  ['sha512', 'sha512'],
  ['hmacsha512', 'sha512'],
]);

const whole = (what: string, allowed: (n: number) => boolean, message: string) =>
  z.coerce
    .number({ error: `must be ${what}` })
    .int(`must be ${what}`)
    .refine(allowed, message);

export const totpFields = {
  totp_secret: totpSecretSchema.optional(),
  totp_digits: whole('6 or 8', (n) => n === 6 || n === 8, 'must be 6 or 8').optional(),
  totp_period: whole('a number of seconds', (n) => n >= 15 && n <= 300, 'must be 15–300 seconds').optional(),
  totp_algorithm: z
    .string()
    .transform((value, ctx) => {
      const algorithm = algorithms.get(value.trim().toLowerCase().replace(/-/g, ''));
      if (!algorithm) ctx.addIssue({ code: 'custom', message: 'must be sha1, sha256 or sha512' });
      return algorithm ?? z.NEVER;
    })
    .optional(),
};

export interface TotpImport {
  totp_secret?: string;
  totp_digits?: number;
  totp_period?: number;
  totp_algorithm?: 'sha1' | 'sha256' | 'sha512';
}

/** "totp_digits: needs a totp_secret" when parameters come without the secret. */
export function totpProblems(row: TotpImport): string[] {
  if (row.totp_secret) return [];
  const stray = (['totp_digits', 'totp_period', 'totp_algorithm'] as const).filter((field) => row[field] !== undefined);
  return stray.map((field) => `${field}: needs a totp_secret`);
}

/** The enrolment row to create for the user (id made here: the sealed secret is bound to it). */
/** Seals an app's secret for its enrolment (the TOTP factor's `sealTotpSecret`; this layer cannot import the factor). */
export type TotpSealer = (secret: string, enrolmentId: string) => Uint8Array<ArrayBuffer>;

export function totpEnrolment(seal: TotpSealer, userId: string, row: TotpImport, label = 'Authenticator app') {
  if (!row.totp_secret) return undefined;
  const id = randomUUID();
  const options = {
    ...(row.totp_digits && row.totp_digits !== 6 ? { digits: row.totp_digits } : {}),
    ...(row.totp_period && row.totp_period !== 30 ? { period: row.totp_period } : {}),
    ...(row.totp_algorithm && row.totp_algorithm !== 'sha1' ? { algorithm: row.totp_algorithm } : {}),
  };
  return {
    id,
    userId,
    type: 'totp',
    label: label.trim().slice(0, 60) || 'Authenticator app',
    position: 0,
    confirmed: true,
    data: options,
    secret: seal(row.totp_secret, id),
  };
}
