import crypto from 'node:crypto';
import type { AuthenticationResponseJSON, PublicKeyCredentialCreationOptionsJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import { generateRegistrationOptions, verifyAuthenticationResponse, verifyRegistrationResponse } from '../shared/webauthn.ts';
import { z } from 'zod';
import type { Settings } from '../../config/settings.ts';
import { safeEqual } from '../../security/crypto.ts';
import type { PrismaClient } from '../../storage/db.ts';
import { webauthnRelyingParty } from '../shared/relying-party.ts';

/** FactorChallenge.factor of setting up the phone's biometric for approvals. */
export const BIOMETRIC_SETUP = 'push-biometric';
const SETUP_TTL_MS = 5 * 60 * 1000;

/** DeviceData.biometric: the phone's platform credential (fingerprint, face), used instead of the PIN. */
export interface BiometricCredential {
  credentialId: string;
  /** COSE public key, base64url. */
  publicKey: string;
  counter: number;
}

const uuid = z.string().uuid();
export const biometricRegistration = z.object({ setupId: uuid, deviceId: uuid, credential: z.record(z.string(), z.unknown()) });

/**
 * The WebAuthn challenge of a biometric approval: bound to the request, the device and the number
 * picked, so the phone computes it itself and an assertion for another answer does not verify.
 */
export function biometricChallenge(challengeId: string, deviceId: string, number: string): string {
  return crypto.createHash('sha256').update(`nyckel-biometric-v1\n${challengeId}\n${deviceId}\n${number}`).digest('base64url');
}

/**
 * "Use fingerprint or face instead of the PIN": a WebAuthn platform credential made on the phone
 * (user verification required) and kept with the phone's registration. Set up with the device key
 * and the PIN (PushDevices checks those); an approval then carries an assertion over
 * biometricChallenge instead of the PIN proof.
 */
export class Biometrics {
  constructor(private readonly deps: { prisma: PrismaClient; settings: Settings }) {}

  async options(device: { id: string; userId: string; label: string }): Promise<{ setupId: string; options: PublicKeyCredentialCreationOptionsJSON }> {
    const { id, name } = webauthnRelyingParty(this.deps.settings);
    const options = await generateRegistrationOptions({
      rpName: name,
      rpID: id,
      userName: device.label || 'Nyckel Authenticator',
      userID: new Uint8Array(Buffer.from(device.id.replace(/-/g, ''), 'hex')),
      attestationType: 'none',
      timeout: SETUP_TTL_MS,
      authenticatorSelection: { authenticatorAttachment: 'platform', residentKey: 'discouraged', userVerification: 'required' },
    });
    const row = await this.deps.prisma.factorChallenge.create({
      data: {
        userId: device.userId,
        factor: BIOMETRIC_SETUP,
        data: { webauthn: options.challenge, deviceId: device.id },
        expiresAt: new Date(Date.now() + SETUP_TTL_MS),
      },
    });
    return { setupId: row.id, options };
  }

  /** Checks the phone's new credential against its setup (once); the credential to keep, or undefined. */
  async register(input: z.infer<typeof biometricRegistration>): Promise<BiometricCredential | undefined> {
    const { prisma } = this.deps;
    const row = await prisma.factorChallenge.findFirst({
      where: { id: input.setupId, factor: BIOMETRIC_SETUP, consumedAt: null, expiresAt: { gt: new Date() } },
    });
    const data = row?.data as { webauthn?: string; deviceId?: string } | undefined;
    if (!row || data?.deviceId !== input.deviceId) return undefined;
    const { count } = await prisma.factorChallenge.updateMany({ where: { id: row.id, consumedAt: null }, data: { consumedAt: new Date() } });
    if (count !== 1) return undefined;
    const { id, origins } = webauthnRelyingParty(this.deps.settings);
    try {
      const result = await verifyRegistrationResponse({
        response: input.credential as unknown as RegistrationResponseJSON,
        expectedChallenge: (challenge) => typeof data.webauthn === 'string' && safeEqual(challenge, data.webauthn),
        expectedOrigin: origins,
        expectedRPID: id,
        requireUserVerification: true,
      });
      if (!result.verified) return undefined;
      const { credential } = result.registrationInfo;
      return { credentialId: credential.id, publicKey: Buffer.from(credential.publicKey).toString('base64url'), counter: credential.counter };
    } catch {
      return undefined;
    }
  }

  /** Verifies an approval's assertion; the credential's new counter, or undefined. */
  async verify(stored: BiometricCredential, assertion: unknown, challenge: string): Promise<number | undefined> {
    const { id, origins } = webauthnRelyingParty(this.deps.settings);
    const response = assertion as AuthenticationResponseJSON;
    if (!response || typeof response !== 'object' || response.id !== stored.credentialId) return undefined;
    try {
      const result = await verifyAuthenticationResponse({
        response,
        expectedChallenge: (value) => safeEqual(value, challenge),
        expectedOrigin: origins,
        expectedRPID: id,
        requireUserVerification: true,
        credential: { id: stored.credentialId, publicKey: new Uint8Array(Buffer.from(stored.publicKey, 'base64url')), counter: stored.counter },
      });
      if (!result.verified) return undefined;
      // A counter that does not advance (a cloned credential) is refused; 0 means the platform keeps none.
      const next = result.authenticationInfo.newCounter;
      if (next !== 0 && next <= stored.counter) return undefined;
      return next;
    } catch {
      return undefined;
    }
  }
}
