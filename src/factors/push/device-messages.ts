import { z } from 'zod';
import type { FactorEnrolment } from '../../generated/prisma/client.ts';
import type { BiometricCredential } from './biometric.ts';
import { publicKeyJwk, pushSubscription, type PublicKeyJwk, type PushSubscriptionJson } from './protocol.ts';

/** The shapes the phone app's API takes and the rows it keeps: requests checked at the edge, answers as values. */

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** FactorEnrolment.data of a phone. The PIN key and the QR secret are in `secret`, sealed. */
export interface DeviceData {
  publicKey: PublicKeyJwk;
  subscription: PushSubscriptionJson | null;
  createdAt: string;
  movedAt?: string;
  /** Fingerprint or face instead of the PIN (a WebAuthn platform credential on the phone). */
  biometric?: BiometricCredential;
}

/** FactorChallenge.data of a push request. */
export interface PushRequestData {
  state: 'pending' | 'approved' | 'denied' | 'wrong_number' | 'cancelled';
  number: string;
  numbers: string[];
  client: string;
  browser: string;
  ip: string;
  time: string;
  notMe?: boolean;
  deviceId?: string;
  /** How the approval was authorised on the phone (the amr follows from it). */
  method?: 'pin' | 'biometric';
}

export type Device = FactorEnrolment & { data: DeviceData };

const uuid = z.string().regex(UUID);
const b64url = z.string().regex(/^[A-Za-z0-9_-]+$/);

export const registerRequest = z.object({
  token: b64url.min(20).max(100),
  name: z.string().max(60).optional(),
  publicKey: publicKeyJwk,
  subscription: pushSubscription.nullable().optional(),
  pin: z.string().max(12),
  pinSalt: b64url.min(16).max(64),
});

export const approveRequest = z.object({
  challengeId: uuid,
  deviceId: uuid,
  decision: z.enum(['approve', 'deny']),
  number: z
    .string()
    .regex(/^\d{0,3}$/)
    .default(''),
  notMe: z.boolean().default(false),
  pinProof: z.string().max(100).default(''),
  /** Instead of the PIN proof: a WebAuthn assertion of the phone's platform credential over biometricChallenge. */
  assertion: z.record(z.string(), z.unknown()).optional(),
  signature: b64url.max(200),
});

export const signedDeviceRequest = z.object({
  deviceId: uuid,
  time: z.number().int(),
  signature: b64url.max(200),
});

export const transferRequest = signedDeviceRequest.extend({ pinProof: b64url.max(100) });

export const subscriptionUpdate = signedDeviceRequest.extend({ subscription: pushSubscription });

/** An answer of the device API: a value, never an exception, mapped to HTTP by the routes. */
export type DeviceOutcome<T = Record<string, unknown>> =
  { ok: true; value: T } | { ok: false; status: number; error: string; retryAfterSeconds?: number; attemptsLeft?: number };

export const fail = (status: number, error: string, extra: { retryAfterSeconds?: number; attemptsLeft?: number } = {}): DeviceOutcome<never> => ({
  ok: false,
  status,
  error,
  ...extra,
});
