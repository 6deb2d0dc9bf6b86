/**
 * The admin API as a resource server of Nyckel itself: a client with `scopes: [nyckel:admin]` in the
 * clients file gets a JWT access token for it by client_credentials, asking for
 * `resource=<issuer>/admin` and `scope=nyckel:admin`.
 */
export const ADMIN_SCOPE = 'nyckel:admin';

export const adminResourceIdentifier = (issuer: string) => `${issuer.replace(/\/$/, '')}/admin`;

export function adminResource(issuer: string) {
  return { identifier: adminResourceIdentifier(issuer), name: 'Nyckel admin API', scopes: [ADMIN_SCOPE], access_token_ttl: undefined as number | undefined };
}
