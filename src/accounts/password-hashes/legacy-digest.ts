import { createHash, timingSafeEqual } from 'node:crypto';
import type { HashReader } from './types.ts';

/** A bare hex MD5 or SHA-1 of the password (no salt): always weak, never kept; recognised so the report says so. */
export const readLegacyDigest: HashReader = (text) => {
  const algorithm = /^[0-9a-f]{32}$/i.test(text) ? 'md5' : /^[0-9a-f]{40}$/i.test(text) ? 'sha1' : undefined;
  if (!algorithm) return undefined;
  const expected = Buffer.from(text, 'hex');
  return {
    scheme: algorithm,
    stored: text.toLowerCase(),
    weakness: `unsalted ${algorithm.toUpperCase()}`,
    verify: async (password) => timingSafeEqual(createHash(algorithm).update(password, 'utf8').digest(), expected),
  };
};
