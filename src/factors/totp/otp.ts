import { createGuardrails, generate, generateSecret, verify } from 'otplib';

/**
 * TOTP as Nyckel configures it (RFC 6238 with the parameters every authenticator app understands):
 * HMAC-SHA1, 6 digits, 30-second steps, one step of clock drift either way.
 */
export const TOTP_OPTIONS = { algorithm: 'sha1', digits: 6, period: 30 } as const;
/** ±1 step: a code from the previous or the next 30 seconds is accepted too. */
export const TOTP_TOLERANCE_SECONDS = TOTP_OPTIONS.period;

/**
 * otplib refuses secrets under 16 bytes by default; apps imported from other systems often have the
 * 10-byte (80-bit) secrets Google Authenticator made popular, and must keep working (new ones are 20 bytes).
 */
const guardrails = createGuardrails({ MIN_SECRET_BYTES: 10 });

/** A new secret: 20 random bytes (160 bits, the RFC 4226 recommendation), base32 without padding. */
export function newTotpSecret(): string {
  return generateSecret({ length: 20 });
}

export interface TotpOptions {
  algorithm: 'sha1' | 'sha256' | 'sha512';
  digits: number;
  period: number;
}

/** An enrolment's parameters: Nyckel's, except where an imported app kept its own in `data`. */
export function totpOptionsOf(data: unknown): TotpOptions {
  const kept = (data ?? {}) as Partial<TotpOptions>;
  return {
    algorithm: kept.algorithm === 'sha256' || kept.algorithm === 'sha512' ? kept.algorithm : TOTP_OPTIONS.algorithm,
    digits: kept.digits === 8 ? 8 : TOTP_OPTIONS.digits,
    period: typeof kept.period === 'number' && kept.period > 0 ? kept.period : TOTP_OPTIONS.period,
  };
}

/** The time step (RFC 6238 `T`) a code matched, or undefined when it matches none within the tolerance (one step). */
export async function matchingStep(
  secret: string,
  token: string,
  epochSeconds = Math.floor(Date.now() / 1000),
  options: TotpOptions = TOTP_OPTIONS,
): Promise<number | undefined> {
  if (token.length !== options.digits || !/^\d+$/.test(token)) return undefined;
  try {
    const result = await verify({ secret, token, epoch: epochSeconds, epochTolerance: options.period, guardrails, ...options });
    return result.valid && 'timeStep' in result ? result.timeStep : undefined;
  } catch {
    // A secret otplib cannot use matches no code (the next enrolment is still tried).
    return undefined;
  }
}

/** The code for a moment (tests and the CLI use it; the server only verifies). */
export function totpCode(secret: string, epochSeconds = Math.floor(Date.now() / 1000)): Promise<string> {
  return generate({ secret, epoch: epochSeconds, guardrails, ...TOTP_OPTIONS });
}

/** `otpauth://totp/<issuer>:<account>?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30` (Google's Key Uri Format). */
export function otpauthUri(input: { issuer: string; account: string; secret: string }): string {
  const label = `${encodeURIComponent(input.issuer)}:${encodeURIComponent(input.account)}`;
  const query = new URLSearchParams({
    secret: input.secret,
    issuer: input.issuer,
    algorithm: 'SHA1',
    digits: String(TOTP_OPTIONS.digits),
    period: String(TOTP_OPTIONS.period),
  });
  return `otpauth://totp/${label}?${query.toString().replace(/\+/g, '%20')}`;
}
