import type { Settings } from '../../config/settings.ts';

export interface RelyingParty {
  /** The domain passkeys are bound to. */
  id: string;
  name: string;
  /** Origins whose pages may run the ceremonies. */
  origins: string[];
}

/** NYCKEL_WEBAUTHN_*, or the issuer in force (with PORT=0 it is known only after binding). */
export function webauthnRelyingParty(settings: Pick<Settings, 'issuer' | 'webauthn'>): RelyingParty {
  const issuer = new URL(settings.issuer);
  return {
    id: settings.webauthn.rpId ?? issuer.hostname,
    name: settings.webauthn.rpName,
    origins: settings.webauthn.origins ?? [issuer.origin],
  };
}

/**
 * RFC 8176 values of a passkey use. A synced passkey (multi-device, or backed up) is a key that leaves
 * the hardware it was made on: `swk`; a key bound to one device (a security key, a TPM) is `hwk`.
 * `user` is added when the authenticator verified the user (PIN, biometrics: the UV flag), not for
 * mere presence (a touch).
 */
export function passkeyAmr(use: { deviceType: 'singleDevice' | 'multiDevice'; backedUp: boolean; userVerified: boolean }): string[] {
  return [use.deviceType === 'multiDevice' || use.backedUp ? 'swk' : 'hwk', ...(use.userVerified ? ['user'] : [])];
}
