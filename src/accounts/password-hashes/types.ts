/**
 * A password hash made by another system, read from its stored text. Each format is one module that
 * turns the text into a verifier, or says why it cannot; `registry.ts` picks the module.
 */
export interface ImportedHash {
  /** The format's name, for reports and the audit log: `bcrypt`, `pbkdf2-sha256`, `django-pbkdf2_sha256`, … */
  scheme: string;
  /** What Nyckel keeps in `users.password_hash`: self-describing, so the registry reads it back at sign-in. */
  stored: string;
  /** Why the hash is too cheap to keep (below the floors in README), or undefined when it is strong enough. */
  weakness?: string;
  /** True when `password` (as typed, not normalised: the other system hashed what it was given) matches. */
  verify(password: string): Promise<boolean>;
}

/** A format's reader: undefined when the text is not this format, an ImportedHash when it is, HashFormatError when it is but broken. */
export type HashReader = (text: string) => ImportedHash | undefined;

export class HashFormatError extends Error {}

/**
 * The floors under which an imported hash is "weak" (refused unless --allow-weak-hashes), and the
 * ceilings over which verifying it at sign-in would cost the server too much (always refused).
 */
export const floors = {
  pbkdf2Iterations: 10_000,
  bcryptCost: 8,
  /** KiB: 7 MiB, OWASP's smallest argon2id memory. */
  argon2MemoryKiB: 7168,
  /** Bytes of memory scrypt uses (128·N·r): 16 MiB, N = 2^14 with r = 8. */
  scryptMemoryBytes: 16 * 1024 * 1024,
} as const;

export const ceilings = {
  pbkdf2Iterations: 5_000_000,
  bcryptCost: 16,
  argon2MemoryKiB: 256 * 1024,
  argon2Passes: 16,
  scryptMemoryBytes: 256 * 1024 * 1024,
} as const;

/** Decodes base64 (standard, URL-safe, or passlib's "adapted" with "." for "+"), padded or not; throws on anything else. */
export function decodeBase64(text: string, what: string): Buffer {
  if (!/^[A-Za-z0-9+/._-]*={0,2}$/.test(text) || text.replace(/=+$/, '').length % 4 === 1) throw new HashFormatError(`the ${what} is not base64`);
  const bytes = Buffer.from(text.replace(/\./g, '+').replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (bytes.length === 0) throw new HashFormatError(`the ${what} is empty`);
  return bytes;
}

/** A whole decimal number within bounds, or HashFormatError naming it. */
export function integer(text: string | undefined, what: string, min = 1): number {
  if (text === undefined || !/^\d{1,10}$/.test(text)) throw new HashFormatError(`the ${what} is not a number`);
  const value = Number(text);
  if (value < min) throw new HashFormatError(`the ${what} must be at least ${min}`);
  return value;
}
