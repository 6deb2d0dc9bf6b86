/**
 * Authentication context classes Nyckel issues. `acr` in an ID token is never higher than what the
 * user did: a password alone gives `password`; the second-factor engine raises it to `mfa`.
 */
export const acr = {
  password: 'urn:nyckel:acr:password',
  mfa: 'urn:nyckel:acr:mfa',
  /**
   * Two factors, but the second was "Forgot your device?" (an email code instead of the client's
   * methods): it meets a client's `required` policy, never a step-up asking for `mfa`.
   */
  fallback: 'urn:nyckel:acr:mfa-fallback',
} as const;

export const acrValuesSupported = [acr.password, acr.mfa, acr.fallback];
