import { pbkdf2, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { ceilings, decodeBase64, floors, HashFormatError, integer, type HashReader, type ImportedHash } from './types.ts';

const derive = promisify(pbkdf2);

export type Pbkdf2Digest = 'sha1' | 'sha256' | 'sha512';

/** PBKDF2 with the key length of the stored hash; compared in constant time. */
export function pbkdf2Hash(input: { scheme: string; stored: string; digest: Pbkdf2Digest; iterations: number; salt: Buffer; hash: Buffer }): ImportedHash {
  if (input.iterations > ceilings.pbkdf2Iterations)
    throw new HashFormatError(`${input.iterations} iterations is more than ${ceilings.pbkdf2Iterations}, too costly to verify at sign-in`);
  if (input.hash.length < 16) throw new HashFormatError('the hash is shorter than 16 bytes');
  // The work grows with the key length too (one PBKDF2 run per digest-sized block): no longer than SHA-512's.
  if (input.hash.length > 64) throw new HashFormatError('the hash is longer than 64 bytes');
  return {
    scheme: input.scheme,
    stored: input.stored,
    weakness: input.iterations < floors.pbkdf2Iterations ? `${input.iterations} iterations, fewer than ${floors.pbkdf2Iterations}` : undefined,
    verify: async (password) => {
      const candidate = await derive(Buffer.from(password, 'utf8'), input.salt, input.iterations, input.hash.length, input.digest);
      return timingSafeEqual(candidate, input.hash);
    },
  };
}

const passlibDigests: Record<string, Pbkdf2Digest> = { pbkdf2: 'sha1', 'pbkdf2-sha1': 'sha1', 'pbkdf2-sha256': 'sha256', 'pbkdf2-sha512': 'sha512' };

/** passlib's `$pbkdf2-sha256$<rounds>$<salt>$<hash>` (also -sha512, and `$pbkdf2$` for SHA-1), in adapted base64. */
export const readPasslibPbkdf2: HashReader = (text) => {
  const match = /^\$(pbkdf2(?:-sha1|-sha256|-sha512)?)\$/.exec(text);
  if (!match) return undefined;
  const [, , rounds, salt, hash, ...rest] = text.split('$');
  if (hash === undefined || rest.length > 0) throw new HashFormatError(`expected $${match[1]}$<iterations>$<salt>$<hash>`);
  return pbkdf2Hash({
    scheme: match[1],
    stored: text,
    digest: passlibDigests[match[1]],
    iterations: integer(rounds, 'iteration count'),
    salt: decodeBase64(salt, 'salt'),
    hash: decodeBase64(hash, 'hash'),
  });
};
