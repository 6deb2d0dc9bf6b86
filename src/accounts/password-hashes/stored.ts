import { verify as argon2Verify } from '@node-rs/argon2';
import { readPasswordHash } from './registry.ts';

/** Nyckel's own hashes, and imported ones already argon2id, stay; every other imported hash is replaced at the next sign-in. */
export const isArgon2id = (stored: string) => stored.startsWith('$argon2id$');

/** The scheme of a stored hash, for the audit log (`bcrypt`, `pbkdf2-sha256`, …). */
export function schemeOf(stored: string): string {
  try {
    return readPasswordHash(stored).scheme;
  } catch {
    return 'unknown';
  }
}

/**
 * Whether `password` matches what `users.password_hash` holds: Nyckel's argon2id of the NFKC form,
 * or a hash imported from another system, which hashed the password as typed. An imported argon2
 * hash of a password whose NFKC form differs is tried both ways.
 */
export async function matchesStoredHash(stored: string, password: string, normalised: string): Promise<boolean> {
  if (stored.startsWith('$argon2')) {
    if (await argon2Verify(stored, normalised).catch(() => false)) return true;
    return normalised !== password && argon2Verify(stored, password).catch(() => false);
  }
  try {
    return await readPasswordHash(stored).verify(password);
  } catch {
    // A stored text no reader knows matches no password.
    return false;
  }
}
