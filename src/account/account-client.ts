import { ACCOUNT_CLIENT_ID, type ClientConfig, type ClientsFile, type FactorId } from '../clients/clients-file.ts';

export { ACCOUNT_CLIENT_ID };

/**
 * The account pages sign users in through Nyckel itself, as an ordinary OIDC client (code + PKCE,
 * public): a first-party client whose second factor the pages ask for themselves (step-up with
 * `acr_values`), so that a user without one can still reach the page that enrols it.
 */
export function accountClient(issuer: string, methods: readonly FactorId[], service = 'Nyckel'): ClientConfig {
  return {
    client_id: ACCOUNT_CLIENT_ID,
    // Shown as "Signing in to …" in every language: the service's name (NYCKEL_BRAND_NAME), not an English phrase.
    name: service,
    first_party: true,
    redirect_uris: [`${issuer}/account/callback`],
    post_logout_redirect_uris: [`${issuer}/account/signed-out`],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'none',
    scopes: ['openid', 'email'],
    id_token_signed_response_alg: 'ES256',
    mfa: { required: false, methods: [...methods], forgot_device_email: false, allow_enrolment_at_login: false, remember_days: 0 },
  };
}

/** The clients file in force plus the account pages' own client (which offers every installed method). */
export function withAccountClient(file: ClientsFile, issuer: string, methods: readonly FactorId[], service?: string): ClientsFile {
  return { ...file, clients: [...file.clients.filter((c) => c.client_id !== ACCOUNT_CLIENT_ID), accountClient(issuer, methods, service)] };
}
