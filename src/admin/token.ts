import { createLocalJWKSet, errors as joseErrors, jwtVerify, type JWK, type JWTVerifyGetKey } from 'jose';
import type { ClientDirectory } from '../clients/directory.ts';
import { signingAlgorithms } from '../keys/signing-keys.ts';
import { ADMIN_SCOPE, adminResourceIdentifier } from './resource.ts';

/** A refused bearer token: 401 invalid_token, or 403 insufficient_scope (RFC 6750 §3.1). */
export class BearerError extends Error {
  constructor(
    readonly error: 'invalid_token' | 'insufficient_scope',
    readonly description: string,
  ) {
    super(description);
    this.name = 'BearerError';
  }

  get status() {
    return this.error === 'invalid_token' ? 401 : 403;
  }

  /** The WWW-Authenticate challenge; without a token at all, RFC 6750 wants no error code. */
  challenge(tokenGiven: boolean) {
    const params = [`realm="nyckel-admin"`];
    if (tokenGiven) params.push(`error="${this.error}"`, `error_description="${this.description.replace(/["\\]/g, '')}"`);
    if (this.error === 'insufficient_scope') params.push(`scope="${ADMIN_SCOPE}"`);
    return `Bearer ${params.join(', ')}`;
  }
}

export interface AdminCaller {
  clientId: string;
}

const PRIVATE_MEMBERS = new Set(['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth']);

/**
 * Checks an access token of the admin API: a JWT signed by one of Nyckel's own published keys
 * (read per request, so rotation and the keys' retirement apply at once), issued by this issuer for
 * the admin resource, unexpired, to a client that is still in the clients file, with the admin scope.
 */
export function adminTokenVerifier(deps: { issuer: string; signingKeys: () => JWK[]; clients: ClientDirectory }) {
  const audience = adminResourceIdentifier(deps.issuer);
  let cached: { kids: string; keySet: JWTVerifyGetKey } | undefined;
  const keySet = () => {
    const keys = deps.signingKeys();
    const kids = keys.map((key) => key.kid).join(' ');
    if (cached?.kids !== kids) {
      const publicKeys = keys.map((key) => Object.fromEntries(Object.entries(key).filter(([name]) => !PRIVATE_MEMBERS.has(name))) as JWK);
      cached = { kids, keySet: createLocalJWKSet({ keys: publicKeys }) };
    }
    return cached.keySet;
  };

  return async function verify(authorization: string | undefined): Promise<AdminCaller> {
    const match = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i.exec(authorization ?? '');
    if (!match) throw new BearerError('invalid_token', 'an access token is required (Authorization: Bearer <token>)');
    let payload;
    try {
      ({ payload } = await jwtVerify(match[1], keySet(), {
        issuer: deps.issuer,
        audience,
        typ: 'at+jwt',
        algorithms: [...signingAlgorithms],
        requiredClaims: ['exp', 'client_id'],
      }));
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) throw new BearerError('invalid_token', 'the access token has expired');
      if (error instanceof joseErrors.JWTClaimValidationFailed && error.claim === 'aud') {
        throw new BearerError('invalid_token', `the access token is not for this API (request it with resource=${audience})`);
      }
      if (error instanceof joseErrors.JOSEError) throw new BearerError('invalid_token', 'the access token is not valid');
      throw error;
    }
    const clientId = typeof payload.client_id === 'string' ? payload.client_id : '';
    if (!deps.clients.get(clientId)) throw new BearerError('invalid_token', 'the client of this access token is no longer configured');
    const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ') : [];
    if (!scopes.includes(ADMIN_SCOPE)) throw new BearerError('insufficient_scope', `the access token lacks the ${ADMIN_SCOPE} scope`);
    return { clientId };
  };
}
