/**
 * Authentication context classes Nyckel issues. `acr` in an ID token is never higher than what the
 * user did: a password alone gives `password`; the second-factor engine raises it to `mfa`.
 */
export const acr = {
  password: 'urn:nyckel:acr:password',
  mfa: 'urn:nyckel:acr:mfa',
} as const;

export const acrValuesSupported = [acr.password, acr.mfa];
