import { verify } from '@node-rs/argon2';
import { ceilings, floors, HashFormatError, integer, type HashReader } from './types.ts';

/** PHC `$argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>` and `$argon2i$…` (Nyckel's own hashes are argon2id PHC too). */
export const readArgon2: HashReader = (text) => {
  const match = /^\$(argon2id|argon2i)\$/.exec(text);
  if (!match) return undefined;
  const parts = /^\$argon2i?d?\$v=(\d+)\$m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/.exec(text);
  if (!parts) throw new HashFormatError(`expected $${match[1]}$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>`);
  const [memory, passes] = [integer(parts[2], 'memory (m)'), integer(parts[3], 'pass count (t)')];
  if (memory > ceilings.argon2MemoryKiB || passes > ceilings.argon2Passes)
    throw new HashFormatError(`m=${memory},t=${passes} is more than m=${ceilings.argon2MemoryKiB},t=${ceilings.argon2Passes}, too costly to verify at sign-in`);
  return {
    scheme: match[1],
    stored: text,
    weakness: memory < floors.argon2MemoryKiB ? `${match[1]} memory ${memory} KiB, less than ${floors.argon2MemoryKiB}` : undefined,
    verify: (password) => verify(text, password).catch(() => false),
  };
};
