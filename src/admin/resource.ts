/**
 * The admin API as a resource server of Nyckel itself: a client with `scopes: [nyckel:admin]` in the
 * clients file gets an access token for it by client_credentials, asking for
 * `resource=<issuer>/admin` and `scope=nyckel:admin`. The token is opaque (kept by oidc-provider, not
 * a JWT), so the admin API looks it up on every request and a revoked or expired one stops at once.
 */
export const ADMIN_SCOPE = 'nyckel:admin';

export const adminResourceIdentifier = (issuer: string) => `${issuer.replace(/\/$/, '')}/admin`;

export function adminResource(issuer: string, tokenTtlSeconds: number) {
  return { identifier: adminResourceIdentifier(issuer), name: 'Nyckel admin API', scopes: [ADMIN_SCOPE], access_token_ttl: tokenTtlSeconds };
}
