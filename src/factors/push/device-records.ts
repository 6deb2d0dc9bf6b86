import { z } from 'zod';
import type { FactorChallenge, FactorEnrolment } from '../../generated/prisma/client.ts';
import type { SecretBox } from '../../security/crypto.ts';
import type { PrismaClient } from '../../storage/db.ts';
import type { ChallengeContext } from '../contract.ts';
import { UUID, type PushRequestData } from './device-messages.ts';
import type { PushPayload } from './protocol.ts';

/** FactorChallenge.factor of adding a phone from the account pages. */
export const ENROLMENT_CHALLENGE = 'push-enrolment';
const SECRETS_PURPOSE = 'push-device';

export interface DeviceSecrets {
  pinKey: Buffer;
  qrSecret: Buffer;
}

export interface EnrolmentState {
  state: 'waiting' | 'registered' | 'expired';
  deviceId?: string;
  label?: string;
}

const sealedSecrets = z.object({ pinKey: z.string(), qrSecret: z.string() });
const enrolmentData = z.object({ deviceId: z.string().optional(), label: z.string().optional() });

/** A phone's PIN key and offline QR secret, opened from FactorEnrolment.secret (undefined if absent or not ours). */
export function openDeviceSecrets(box: SecretBox, device: Pick<FactorEnrolment, 'id' | 'secret'>): DeviceSecrets | undefined {
  if (!device.secret) return undefined;
  try {
    const opened = sealedSecrets.parse(JSON.parse(box.open(SECRETS_PURPOSE, device.secret, device.id).toString('utf8')));
    return { pinKey: Buffer.from(opened.pinKey, 'base64url'), qrSecret: Buffer.from(opened.qrSecret, 'base64url') };
  } catch {
    return undefined;
  }
}

export function sealDeviceSecrets(box: SecretBox, deviceId: string, secrets: DeviceSecrets): Uint8Array<ArrayBuffer> {
  const plain = { pinKey: secrets.pinKey.toString('base64url'), qrSecret: secrets.qrSecret.toString('base64url') };
  return box.seal(SECRETS_PURPOSE, JSON.stringify(plain), deviceId);
}

/** `waiting` until the phone registered with the enrolment token, then `registered` with the (unconfirmed) device. */
export async function readEnrolmentState(prisma: PrismaClient, ctx: ChallengeContext, challengeId: string): Promise<EnrolmentState> {
  if (!UUID.test(challengeId)) return { state: 'expired' };
  const row = await prisma.factorChallenge.findFirst({
    where: { id: challengeId, uid: ctx.uid, userId: ctx.user.id, factor: ENROLMENT_CHALLENGE },
  });
  if (!row) return { state: 'expired' };
  const data = enrolmentData.safeParse(row.data);
  const deviceId = data.success ? data.data.deviceId : undefined;
  if (row.verifiedAt && deviceId) return { state: 'registered', deviceId, label: data.data?.label };
  if (row.consumedAt || row.expiresAt <= new Date()) return { state: 'expired' };
  return { state: 'waiting' };
}

/** What the app shows of a request (never the number to pick: that is on the sign-in page only). */
export function requestOf(row: FactorChallenge): Omit<PushPayload, 'type'> {
  const data = row.data as unknown as PushRequestData;
  return {
    challengeId: row.id,
    client: data.client,
    time: data.time,
    expiresAt: row.expiresAt.toISOString(),
    browser: data.browser,
    ip: data.ip,
    numbers: data.numbers,
  };
}
