import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import { z } from 'zod';

/** The JSON @simplewebauthn/browser posts back, checked before anything is decoded. */
const base64url = z
  .string()
  .min(1)
  .max(16_384)
  .regex(/^[A-Za-z0-9_-]+$/);
const credentialId = base64url.max(1366);
const extensions = z.record(z.string(), z.unknown()).default({});
const attachment = z.enum(['platform', 'cross-platform']).optional();
const transports = z
  .array(z.enum(['ble', 'cable', 'hybrid', 'internal', 'nfc', 'smart-card', 'usb']))
  .max(8)
  .optional();

const authenticationSchema = z.object({
  id: credentialId,
  rawId: credentialId,
  type: z.literal('public-key'),
  response: z.object({
    clientDataJSON: base64url,
    authenticatorData: base64url,
    signature: base64url,
    userHandle: base64url.max(128).nullish(),
  }),
  clientExtensionResults: extensions,
  authenticatorAttachment: attachment,
});

const registrationSchema = z.object({
  id: credentialId,
  rawId: credentialId,
  type: z.literal('public-key'),
  response: z.object({
    clientDataJSON: base64url,
    attestationObject: base64url,
    authenticatorData: base64url.optional(),
    transports,
    publicKeyAlgorithm: z.number().int().optional(),
    publicKey: base64url.optional(),
  }),
  clientExtensionResults: extensions,
  authenticatorAttachment: attachment,
});

export function authenticationResponse(value: unknown): AuthenticationResponseJSON | undefined {
  const parsed = authenticationSchema.safeParse(value);
  if (!parsed.success) return undefined;
  const { userHandle, ...response } = parsed.data.response;
  return { ...parsed.data, response: { ...response, ...(userHandle ? { userHandle } : {}) } };
}

export function registrationResponse(value: unknown): RegistrationResponseJSON | undefined {
  const parsed = registrationSchema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}
