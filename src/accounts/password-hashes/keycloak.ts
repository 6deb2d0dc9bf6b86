import { pbkdf2Hash, type Pbkdf2Digest } from './pbkdf2.ts';
import { decodeBase64, HashFormatError, type HashReader } from './types.ts';

const keycloakDigests: Record<string, Pbkdf2Digest> = { 'pbkdf2-sha256': 'sha256', 'pbkdf2-sha512': 'sha512', pbkdf2: 'sha1' };

/** Keycloak exports `secretData` and `credentialData` as JSON text inside the JSON; a hand-made file may give objects. */
function jsonField(value: unknown, what: string): Record<string, unknown> {
  let parsed = value;
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value);
    } catch {
      throw new HashFormatError(`${what} is not JSON`);
    }
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new HashFormatError(`${what} must be an object`);
  return parsed as Record<string, unknown>;
}

/** passlib's adapted base64 ("." for "+", no padding), so the hash is kept as `$pbkdf2-sha256$…` and read back by the passlib reader. */
const ab64 = (bytes: Buffer) => bytes.toString('base64').replace(/=+$/, '').replace(/\+/g, '.');

/**
 * A Keycloak password credential, `{"secretData": {"value": b64 hash, "salt": b64 salt},
 * "credentialData": {"hashIterations": n, "algorithm": "pbkdf2-sha256" | "pbkdf2-sha512" | "pbkdf2"}}`
 * (the two fields as Keycloak's JSON text or as objects). PBKDF2 with the stored hash's length (Keycloak: 64 bytes).
 */
export function keycloakCredential(credential: { secretData?: unknown; credentialData?: unknown }) {
  const secret = jsonField(credential.secretData, 'secretData');
  const data = jsonField(credential.credentialData, 'credentialData');
  const algorithm = typeof data.algorithm === 'string' ? data.algorithm : 'pbkdf2-sha256';
  const digest = Object.hasOwn(keycloakDigests, algorithm) ? keycloakDigests[algorithm] : undefined;
  if (!digest) throw new HashFormatError(`the Keycloak algorithm ${algorithm} is not supported (pbkdf2-sha256, pbkdf2-sha512, pbkdf2)`);
  const iterations = data.hashIterations;
  if (typeof iterations !== 'number' || !Number.isInteger(iterations) || iterations < 1)
    throw new HashFormatError('credentialData.hashIterations must be a whole number');
  if (typeof secret.value !== 'string' || typeof secret.salt !== 'string') throw new HashFormatError('secretData needs a value and a salt');
  const [salt, hash] = [decodeBase64(secret.salt, 'salt'), decodeBase64(secret.value, 'hash')];
  const scheme = digest === 'sha1' ? 'pbkdf2' : `pbkdf2-${digest}`;
  return pbkdf2Hash({ scheme: `keycloak-${algorithm}`, stored: `$${scheme}$${iterations}$${ab64(salt)}$${ab64(hash)}`, digest, iterations, salt, hash });
}

/** The credential as JSON text (a CSV cell, or a JSON field given as a string). */
export const readKeycloak: HashReader = (text) => {
  if (!text.startsWith('{')) return undefined;
  return keycloakCredential(jsonField(text, 'the Keycloak credential'));
};
