import { decodeJwt } from 'jose';
import type Provider from 'oidc-provider';
import type { ClientDirectory } from '../clients/directory.ts';
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

/** What the admin API needs of oidc-provider: its stored client_credentials tokens. */
export type TokenStore = () => Pick<Provider, 'ClientCredentials'>;

const audienceOf = (aud: string | string[] | undefined) => (Array.isArray(aud) ? aud : aud ? [aud] : []);

/** A JWT from Nyckel for another API: said so, to help a caller who asked for the wrong resource. */
function isOtherApisJwt(token: string, audience: string): boolean {
  try {
    return !audienceOf(decodeJwt(token).aud).includes(audience);
  } catch {
    return false;
  }
}

/**
 * Checks an access token of the admin API: an opaque client_credentials token that oidc-provider still
 * keeps (so one revoked at /token/revocation, or expired, is refused at once), issued for the admin
 * resource, to a client that is still in the clients file, with the admin scope.
 */
export function adminTokenVerifier(deps: { issuer: string; tokens: TokenStore; clients: ClientDirectory }) {
  const audience = adminResourceIdentifier(deps.issuer);
  const notForThisApi = () => new BearerError('invalid_token', `the access token is not for this API (request it with resource=${audience})`);

  return async function verify(authorization: string | undefined): Promise<AdminCaller> {
    const match = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i.exec(authorization ?? '');
    if (!match) throw new BearerError('invalid_token', 'an access token is required (Authorization: Bearer <token>)');
    const token = await deps.tokens().ClientCredentials.find(match[1]);
    if (!token) {
      if (isOtherApisJwt(match[1], audience)) throw notForThisApi();
      throw new BearerError('invalid_token', 'the access token is not valid (unknown, expired or revoked)');
    }
    if (!audienceOf(token.aud).includes(audience)) throw notForThisApi();
    if (!deps.clients.get(token.clientId ?? '')) throw new BearerError('invalid_token', 'the client of this access token is no longer configured');
    if (!token.scopes.has(ADMIN_SCOPE)) throw new BearerError('insufficient_scope', `the access token lacks the ${ADMIN_SCOPE} scope`);
    return { clientId: token.clientId! };
  };
}
