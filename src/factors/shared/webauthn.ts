import type * as WebAuthn from '@simplewebauthn/server';

/**
 * The ceremonies of @simplewebauthn/server, with its ASN.1 and X.509 parsers imported at the first
 * passkey or biometric ceremony rather than at start: most sign-ins never need them.
 */
const load = () => import('@simplewebauthn/server');

export const generateRegistrationOptions: typeof WebAuthn.generateRegistrationOptions = async (options) => (await load()).generateRegistrationOptions(options);
export const verifyRegistrationResponse: typeof WebAuthn.verifyRegistrationResponse = async (options) => (await load()).verifyRegistrationResponse(options);
export const generateAuthenticationOptions: typeof WebAuthn.generateAuthenticationOptions = async (options) =>
  (await load()).generateAuthenticationOptions(options);
export const verifyAuthenticationResponse: typeof WebAuthn.verifyAuthenticationResponse = async (options) =>
  (await load()).verifyAuthenticationResponse(options);
