import { readArgon2 } from './argon2.ts';
import { readBcrypt } from './bcrypt.ts';
import { readDjango } from './django.ts';
import { readKeycloak } from './keycloak.ts';
import { readLegacyDigest } from './legacy-digest.ts';
import { readPasslibPbkdf2 } from './pbkdf2.ts';
import { readScrypt } from './scrypt.ts';
import { HashFormatError, type ImportedHash } from './types.ts';

export { HashFormatError, floors, type ImportedHash } from './types.ts';
export { keycloakCredential } from './keycloak.ts';

const readers = [readArgon2, readBcrypt, readScrypt, readPasslibPbkdf2, readDjango, readKeycloak, readLegacyDigest];

export const knownFormats =
  '$argon2id$, $argon2i$, $2a$/$2b$/$2y$ (bcrypt), $scrypt$, $pbkdf2-sha256$/$pbkdf2-sha512$/$pbkdf2$ (passlib), pbkdf2_sha256$ (Django), a Keycloak credential {"secretData", "credentialData"}';

/** The hash of an import file (or of `users.password_hash`); HashFormatError says why it cannot be read. */
export function readPasswordHash(text: string): ImportedHash {
  const trimmed = text.trim();
  for (const read of readers) {
    const hash = read(trimmed);
    if (hash) return hash;
  }
  throw new HashFormatError(`not a known hash format (${knownFormats})`);
}
