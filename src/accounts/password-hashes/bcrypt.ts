import { verify } from '@node-rs/bcrypt';
import { ceilings, floors, HashFormatError, type HashReader } from './types.ts';

/** bcrypt `$2a$`, `$2b$`, `$2y$` (the same algorithm; the letters mark old implementations' bugs, fixed before these). */
export const readBcrypt: HashReader = (text) => {
  if (!/^\$2[aby]\$/.test(text)) return undefined;
  const match = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/.exec(text);
  if (!match) throw new HashFormatError('expected $2b$<cost>$ and 53 characters of salt and hash');
  const cost = Number(match[1]);
  if (cost < 4 || cost > ceilings.bcryptCost) throw new HashFormatError(`cost ${cost} is outside 4–${ceilings.bcryptCost}`);
  return {
    scheme: 'bcrypt',
    stored: text,
    weakness: cost < floors.bcryptCost ? `bcrypt cost ${cost}, lower than ${floors.bcryptCost}` : undefined,
    // bcrypt reads at most 72 bytes of the password: what the other system stored is what it saw.
    verify: (password) => verify(password, text).catch(() => false),
  };
};
