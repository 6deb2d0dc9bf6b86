import { pbkdf2Hash } from './pbkdf2.ts';
import { decodeBase64, HashFormatError, integer, type HashReader } from './types.ts';

/** Django's `pbkdf2_sha256$<iterations>$<salt>$<base64 hash>` (also pbkdf2_sha1): the salt is text, used as its UTF-8 bytes. */
export const readDjango: HashReader = (text) => {
  const match = /^pbkdf2_(sha256|sha1)\$/.exec(text);
  if (!match) return undefined;
  const [, iterations, salt, hash, ...rest] = text.split('$');
  if (hash === undefined || rest.length > 0 || !salt) throw new HashFormatError(`expected pbkdf2_${match[1]}$<iterations>$<salt>$<hash>`);
  return pbkdf2Hash({
    scheme: `django-pbkdf2_${match[1]}`,
    stored: text,
    digest: match[1] as 'sha256' | 'sha1',
    iterations: integer(iterations, 'iteration count'),
    salt: Buffer.from(salt, 'utf8'),
    hash: decodeBase64(hash, 'hash'),
  });
};
