import type { z } from 'zod';

/**
 * FAPI 2.0 Security Profile (final, 2025) for one client of the clients file: `security_profile: fapi2`.
 * What the profile asks and how Nyckel meets it:
 * - pushed authorization requests only (require_pushed_authorization_requests, filled in as true);
 * - PKCE with S256 (oidc-provider offers no other method; Nyckel requires PKCE of every client);
 * - private_key_jwt client authentication (mutual TLS is not offered: Nyckel sits behind a TLS-terminating proxy);
 * - DPoP-bound access tokens (dpop_bound_access_tokens, filled in as true), which also makes every
 *   token request of the client, refreshes included, carry a DPoP proof;
 * - refresh tokens bound to the client by its private_key_jwt authentication (RFC 9449 section 5) and not rotated;
 * - the authorization code lives at most 60 seconds; only the `code` response type (Nyckel offers no other);
 * - the `iss` authorization response parameter (RFC 9207; oidc-provider sends it to every client).
 */
export const FAPI2 = 'fapi2';

/** The longest an authorization code of a FAPI 2.0 client lives (FAPI 2.0 Security Profile 5.3.2.1). */
export const FAPI2_CODE_TTL_SECONDS = 60;

export const securityProfiles = [FAPI2] as const;

/** The fields of a client entry that the profile looks at. */
export interface ProfiledClient {
  security_profile?: (typeof securityProfiles)[number];
  token_endpoint_auth_method: string;
  dpop_bound_access_tokens?: boolean;
  require_pushed_authorization_requests?: boolean;
  grant_types: readonly string[];
}

export function isFapi2(client: Pick<ProfiledClient, 'security_profile'>): boolean {
  return client.security_profile === FAPI2;
}

/** The problems of an entry that says `security_profile: fapi2` but configures something the profile forbids. */
export function checkFapi2(client: ProfiledClient, ctx: z.RefinementCtx): void {
  if (!isFapi2(client)) return;
  const problem = (field: string, message: string) => ctx.addIssue({ code: 'custom', path: [field], message: `security_profile fapi2 ${message}` });
  if (client.token_endpoint_auth_method !== 'private_key_jwt') {
    problem('token_endpoint_auth_method', `needs token_endpoint_auth_method private_key_jwt, not ${client.token_endpoint_auth_method}`);
  }
  if (client.dpop_bound_access_tokens === false) problem('dpop_bound_access_tokens', 'needs dpop_bound_access_tokens true (or leave it out)');
  if (client.require_pushed_authorization_requests === false) {
    problem('require_pushed_authorization_requests', 'needs require_pushed_authorization_requests true (or leave it out)');
  }
  const outside = client.grant_types.filter((grant) => !['authorization_code', 'refresh_token', 'client_credentials'].includes(grant));
  if (outside.length > 0) problem('grant_types', `allows only authorization_code, refresh_token and client_credentials, not ${outside.join(', ')}`);
}

/** The client metadata the profile fills in where the entry leaves it out. */
export function profileMetadata(client: ProfiledClient) {
  return {
    dpop_bound_access_tokens: client.dpop_bound_access_tokens ?? isFapi2(client),
    require_pushed_authorization_requests: client.require_pushed_authorization_requests ?? isFapi2(client),
  };
}
