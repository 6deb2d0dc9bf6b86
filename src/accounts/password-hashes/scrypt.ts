import { scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { ceilings, decodeBase64, floors, HashFormatError, integer, type HashReader } from './types.ts';

const derive = (password: Buffer, salt: Buffer, length: number, options: ScryptOptions) =>
  new Promise<Buffer>((resolve, reject) => scrypt(password, salt, length, options, (error, key) => (error ? reject(error) : resolve(key))));

/** PHC `$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<hash>` (passlib's form): node:crypto scrypt, constant-time compare. */
export const readScrypt: HashReader = (text) => {
  if (!text.startsWith('$scrypt$')) return undefined;
  const parts = /^\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)\$([^$]+)\$([^$]+)$/.exec(text);
  if (!parts) throw new HashFormatError('expected $scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<hash>');
  const ln = integer(parts[1], 'ln');
  const [r, p] = [integer(parts[2], 'r'), integer(parts[3], 'p')];
  const memory = 128 * 2 ** ln * r;
  if (ln > 24 || memory > ceilings.scryptMemoryBytes || p > 16) throw new HashFormatError(`ln=${ln},r=${r},p=${p} is too costly to verify at sign-in`);
  const [salt, hash] = [decodeBase64(parts[4], 'salt'), decodeBase64(parts[5], 'hash')];
  if (hash.length < 16 || hash.length > 64) throw new HashFormatError('the hash must be 16 to 64 bytes');
  const options = { N: 2 ** ln, r, p, maxmem: memory * 2 };
  return {
    scheme: 'scrypt',
    stored: text,
    weakness: memory < floors.scryptMemoryBytes ? `scrypt memory ${memory / 1024} KiB (128·N·r), less than ${floors.scryptMemoryBytes / 1024}` : undefined,
    verify: async (password) => timingSafeEqual(await derive(Buffer.from(password, 'utf8'), salt, hash.length, options), hash),
  };
};
