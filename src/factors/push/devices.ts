import { CONTROL_CHARACTERS } from '../shared/labels.ts';
import crypto from 'node:crypto';
import { z } from 'zod';
import type { Settings } from '../../config/settings.ts';
import type { FactorEnrolment } from '../../generated/prisma/client.ts';
import { randomToken, safeEqual, type SecretBox } from '../../security/crypto.ts';
import type { PrismaClient } from '../../storage/db.ts';
import type { ChallengeContext } from '../contract.ts';
import type { FailureLock } from '../shared/failure-lock.ts';
import { canonical, derivePinKey, isTrivialPin, pinProof, verifySignature, type PushPayload } from './protocol.ts';
import {
  fail,
  UUID,
  type approveRequest,
  type Device,
  type DeviceData,
  type DeviceOutcome,
  type PushRequestData,
  type registerRequest,
  type signedDeviceRequest,
  type subscriptionUpdate,
  type transferRequest,
} from './device-messages.ts';
import {
  ENROLMENT_CHALLENGE,
  openDeviceSecrets,
  requestOf,
  readEnrolmentState,
  sealDeviceSecrets,
  type DeviceSecrets,
  type EnrolmentState,
} from './device-records.ts';
import { acceptableEndpoint, loadVapidKeys, sendPush, type VapidKeys } from './web-push.ts';
import { biometricChallenge, Biometrics, type biometricRegistration } from './biometric.ts';

export * from './device-messages.ts';
export { requestOf, ENROLMENT_CHALLENGE } from './device-records.ts';

/** FactorEnrolment.type of a registered phone (Nyckel Authenticator). */
export const DEVICE_TYPE = 'push';
/** FactorChallenge.factor of a push sign-in request, of adding a phone, and of moving one to a new phone. */
export const PUSH_CHALLENGE = 'push';
export const TRANSFER_CHALLENGE = 'push-transfer';
/** Wrong PINs per user count here (the failure lock of src/factors/shared/failure-lock.ts). */
export const PIN_FAMILY = 'push-pin';
const TOKEN_TTL_MS = 10 * 60 * 1000;
/** How far the clock of a signed "list my requests" may be from ours. */
const CLOCK_SKEW_MS = 2 * 60 * 1000;
const TOKEN_PURPOSE = 'push-device-token';

/**
 * The phones of Nyckel Authenticator: registration (by a single-use enrolment or transfer token),
 * their sealed secrets, push requests (sent with Web Push, approved by a signature of the device key
 * with number matching and a PIN proof), and the offline QR secret.
 */
export class PushDevices {
  private vapid?: Promise<VapidKeys>;
  private readonly biometrics: Biometrics;

  constructor(private readonly deps: { prisma: PrismaClient; box: SecretBox; lock: FailureLock; settings: Settings }) {
    this.biometrics = new Biometrics(deps);
  }

  vapidKeys(): Promise<VapidKeys> {
    this.vapid ??= loadVapidKeys(this.deps.prisma, this.deps.box, this.deps.settings).catch((error) => {
      this.vapid = undefined;
      throw error;
    });
    return this.vapid;
  }

  devicesOf(userId: string): Promise<Device[]> {
    return this.deps.prisma.factorEnrolment.findMany({
      where: { userId, type: DEVICE_TYPE, confirmed: true },
      orderBy: [{ position: 'asc' }, { createdAt: 'desc' }],
    }) as Promise<Device[]>;
  }

  async device(deviceId: string): Promise<Device | null> {
    if (!UUID.test(deviceId)) return null;
    return (await this.deps.prisma.factorEnrolment.findFirst({ where: { id: deviceId, type: DEVICE_TYPE, confirmed: true } })) as Device | null;
  }

  secretsOf(device: Pick<FactorEnrolment, 'id' | 'secret'>): DeviceSecrets | undefined {
    return openDeviceSecrets(this.deps.box, device);
  }

  private sealSecrets(deviceId: string, secrets: DeviceSecrets) {
    return sealDeviceSecrets(this.deps.box, deviceId, secrets);
  }

  /** `waiting` until the phone registered with the token, then `registered` with the (unconfirmed) device. */
  enrolmentState(ctx: ChallengeContext, challengeId: string): Promise<EnrolmentState> {
    return readEnrolmentState(this.deps.prisma, ctx, challengeId);
  }

  private tokenHash(token: string) {
    return this.deps.box.mac(TOKEN_PURPOSE, token);
  }

  // --- Adding a phone (account pages) and moving one (from the old phone) -----------------------------

  /** A single-use token for the QR code of "Add a mobile device", bound to the account page session. */
  async newEnrolmentToken(ctx: ChallengeContext, label: string): Promise<{ challengeId: string; token: string }> {
    const token = randomToken(32);
    const { prisma } = this.deps;
    const row = await prisma.$transaction(async (tx) => {
      // Phones that registered but were never confirmed on the account page are forgotten.
      await tx.factorEnrolment.deleteMany({
        where: { userId: ctx.user.id, type: DEVICE_TYPE, confirmed: false, createdAt: { lt: new Date(Date.now() - TOKEN_TTL_MS) } },
      });
      await tx.factorChallenge.updateMany({
        where: { uid: ctx.uid, userId: ctx.user.id, factor: ENROLMENT_CHALLENGE, consumedAt: null },
        data: { consumedAt: new Date() },
      });
      return tx.factorChallenge.create({
        data: {
          uid: ctx.uid,
          userId: ctx.user.id,
          factor: ENROLMENT_CHALLENGE,
          secretHash: this.tokenHash(token),
          data: { label },
          expiresAt: new Date(Date.now() + TOKEN_TTL_MS),
        },
      });
    });
    // Sealed as well (bound to the row), so that the page can show the same QR code again on reload.
    await prisma.factorChallenge.update({
      where: { id: row.id },
      data: { data: { label, token: Buffer.from(this.deps.box.seal(TOKEN_PURPOSE, token, row.id)).toString('base64') } },
    });
    return { challengeId: row.id, token };
  }

  /** The token of an enrolment still waiting for its phone (for showing its QR code again). */
  async enrolmentToken(ctx: ChallengeContext, challengeId: string): Promise<string | undefined> {
    if (!UUID.test(challengeId)) return undefined;
    const row = await this.deps.prisma.factorChallenge.findFirst({
      where: { id: challengeId, uid: ctx.uid, userId: ctx.user.id, factor: ENROLMENT_CHALLENGE, consumedAt: null, expiresAt: { gt: new Date() } },
    });
    const sealed = (row?.data as { token?: string } | undefined)?.token;
    return row && sealed ? this.deps.box.open(TOKEN_PURPOSE, Buffer.from(sealed, 'base64'), row.id).toString('utf8') : undefined;
  }

  /** The account page confirms the phone that registered with its token (once). */
  async confirmEnrolment(ctx: ChallengeContext, challengeId: string): Promise<Device | undefined> {
    const state = await this.enrolmentState(ctx, challengeId);
    if (state.state !== 'registered' || !state.deviceId) return undefined;
    const { count } = await this.deps.prisma.factorEnrolment.updateMany({
      where: { id: state.deviceId, userId: ctx.user.id, type: DEVICE_TYPE, confirmed: false },
      data: { confirmed: true },
    });
    if (count !== 1) return undefined;
    return (await this.deps.prisma.factorEnrolment.findUnique({ where: { id: state.deviceId } })) as Device;
  }

  /**
   * A phone registers with an enrolment token (a new device, confirmed by the account page) or a
   * transfer token (the same registration moves to this phone: new key, PIN and QR secret; the old
   * phone's key stops working at once). The token works once, even under parallel requests.
   */
  async register(
    input: z.infer<typeof registerRequest>,
  ): Promise<DeviceOutcome<{ deviceId: string; qrSecret: string; name: string; moved: boolean; userId: string }>> {
    const { prisma, settings } = this.deps;
    if (isTrivialPin(input.pin)) return fail(400, 'trivial_pin');
    if (input.subscription && !acceptableEndpoint(input.subscription.endpoint, settings)) return fail(400, 'bad_endpoint');
    const salt = Buffer.from(input.pinSalt, 'base64url');
    if (salt.length < 16) return fail(400, 'invalid_input');
    const now = new Date();
    const row = await prisma.factorChallenge.findFirst({
      where: { factor: { in: [ENROLMENT_CHALLENGE, TRANSFER_CHALLENGE] }, secretHash: this.tokenHash(input.token), consumedAt: null, expiresAt: { gt: now } },
    });
    if (!row) return fail(410, 'token_expired');
    const secrets = { pinKey: derivePinKey(input.pin, salt), qrSecret: crypto.randomBytes(32) };
    const moved = row.factor === TRANSFER_CHALLENGE;
    const existingId = moved ? (row.data as { deviceId?: string }).deviceId : undefined;
    const deviceId = existingId ?? crypto.randomUUID();
    const name = (input.name ?? '').replace(CONTROL_CHARACTERS, '').trim().slice(0, 60) || String((row.data as { label?: string }).label ?? '') || 'Phone';
    const result = await prisma.$transaction(async (tx) => {
      const { count } = await tx.factorChallenge.updateMany({
        where: { id: row.id, consumedAt: null, expiresAt: { gt: now } },
        data: { consumedAt: now, verifiedAt: now, data: { ...(row.data as object), token: undefined, deviceId } },
      });
      if (count !== 1) return undefined;
      const data: DeviceData = { publicKey: input.publicKey, subscription: input.subscription ?? null, createdAt: now.toISOString() };
      if (moved) {
        const old = await tx.factorEnrolment.findFirst({ where: { id: deviceId, userId: row.userId, type: DEVICE_TYPE, confirmed: true } });
        if (!old) return undefined;
        await tx.factorEnrolment.update({
          where: { id: deviceId },
          data: {
            secret: this.sealSecrets(deviceId, secrets),
            data: { ...data, createdAt: (old.data as unknown as DeviceData).createdAt, movedAt: now.toISOString() } as object,
          },
        });
        return old.label;
      }
      await tx.factorEnrolment.create({
        data: {
          id: deviceId,
          userId: row.userId,
          type: DEVICE_TYPE,
          label: name,
          position: 0,
          confirmed: false,
          secret: this.sealSecrets(deviceId, secrets),
          data: data as object,
        },
      });
      return name;
    });
    if (result === undefined) return fail(410, 'token_expired');
    return { ok: true, value: { deviceId, qrSecret: secrets.qrSecret.toString('base64url'), name: result, moved, userId: row.userId } };
  }

  /** Checks a device's signature over a timed request (listing, moving, a new subscription). */
  async signedDevice(input: z.infer<typeof signedDeviceRequest>, message: string): Promise<DeviceOutcome<Device>> {
    const device = await this.device(input.deviceId);
    if (!device) return fail(401, 'unknown_device');
    if (Math.abs(Date.now() - input.time) > CLOCK_SKEW_MS) return fail(400, 'clock');
    if (!verifySignature(device.data.publicKey, message, input.signature)) return fail(401, 'bad_signature');
    return { ok: true, value: device };
  }

  /** From the old phone (signed, with the PIN): a single-use token for the QR code the new phone scans. */
  async newTransferToken(input: z.infer<typeof transferRequest>): Promise<DeviceOutcome<{ token: string; userId: string; deviceId: string }>> {
    const signed = await this.signedDevice(input, canonical.transfer(input.deviceId, input.time, input.pinProof));
    if (!signed.ok) return signed;
    const device = signed.value;
    const pin = await this.checkPin(device, 'transfer', String(input.time), input.pinProof);
    if (!pin.ok) return pin;
    const token = randomToken(32);
    await this.deps.prisma.$transaction(async (tx) => {
      await tx.factorChallenge.updateMany({ where: { userId: device.userId, factor: TRANSFER_CHALLENGE, consumedAt: null }, data: { consumedAt: new Date() } });
      await tx.factorChallenge.create({
        data: {
          userId: device.userId,
          factor: TRANSFER_CHALLENGE,
          secretHash: this.tokenHash(token),
          data: { deviceId: device.id },
          expiresAt: new Date(Date.now() + TOKEN_TTL_MS),
        },
      });
    });
    return { ok: true, value: { token, userId: device.userId, deviceId: device.id } };
  }

  async updateSubscription(input: z.infer<typeof subscriptionUpdate>): Promise<DeviceOutcome<{ deviceId: string }>> {
    const signed = await this.signedDevice(input, canonical.subscription(input.deviceId, input.time, input.subscription.endpoint));
    if (!signed.ok) return signed;
    if (!acceptableEndpoint(input.subscription.endpoint, this.deps.settings)) return fail(400, 'bad_endpoint');
    await this.deps.prisma.factorEnrolment.update({
      where: { id: signed.value.id },
      data: { data: { ...(signed.value.data as DeviceData), subscription: input.subscription } as object },
    });
    return { ok: true, value: { deviceId: signed.value.id } };
  }

  /** The PIN proof of one request, checked under the user's failure lock (a wrong one counts). */
  private checkPin(device: Device, purpose: 'approve' | 'transfer' | 'biometric', value: string, proof: string): Promise<DeviceOutcome<null>> {
    const secrets = this.secretsOf(device);
    return this.counted(device, 'wrong_pin', () => Boolean(secrets && proof && safeEqual(pinProof(secrets.pinKey, purpose, value), proof)));
  }

  /** A check of the PIN or the biometric under the user's failure lock (both share it): only a wrong one counts. */
  private async counted(device: Device, wrong: string, check: () => boolean | Promise<boolean>): Promise<DeviceOutcome<null>> {
    const { lock } = this.deps;
    const judged = await lock.judge(device.userId, PIN_FAMILY, async () =>
      (await check()) ? { verdict: 'right' as const, value: null } : { verdict: 'wrong' as const, value: null },
    );
    if (judged.locked) return fail(429, 'locked', { retryAfterSeconds: judged.retryAfterSeconds });
    if (judged.verdict === 'right') return { ok: true, value: null };
    if (judged.attemptsLeft > 0) return fail(401, wrong, { attemptsLeft: judged.attemptsLeft });
    const state = await lock.check(device.userId, PIN_FAMILY);
    return fail(429, 'locked', { retryAfterSeconds: state.locked ? state.retryAfterSeconds : 1 });
  }

  /** Fingerprint or face instead of the PIN, step 1 (signed, with the PIN): WebAuthn creation options. */
  async biometricOptions(input: z.infer<typeof transferRequest>): Promise<DeviceOutcome<Awaited<ReturnType<Biometrics['options']>>>> {
    const signed = await this.signedDevice(input, canonical.biometric(input.deviceId, input.time, input.pinProof));
    if (!signed.ok) return signed;
    const pin = await this.checkPin(signed.value, 'biometric', String(input.time), input.pinProof);
    if (!pin.ok) return pin;
    return { ok: true, value: await this.biometrics.options(signed.value) };
  }

  /** Step 2: the phone's new platform credential, kept with its registration. */
  async biometricRegister(input: z.infer<typeof biometricRegistration>): Promise<DeviceOutcome<{ deviceId: string; userId: string }>> {
    const device = await this.device(input.deviceId);
    if (!device) return fail(401, 'unknown_device');
    const credential = await this.biometrics.register(input);
    if (!credential) return fail(400, 'biometric_failed');
    await this.deps.prisma.factorEnrolment.update({
      where: { id: device.id },
      data: { data: { ...(device.data as DeviceData), biometric: credential } as object },
    });
    return { ok: true, value: { deviceId: device.id, userId: device.userId } };
  }

  // --- Push requests ---------------------------------------------------------------------------------

  /** Sends the request to every phone of the user that has a subscription; drops subscriptions gone. */
  async sendRequest(devices: Device[], payload: PushPayload): Promise<number> {
    const withSubscription = devices.filter((d) => d.data.subscription && acceptableEndpoint(d.data.subscription.endpoint, this.deps.settings));
    if (withSubscription.length === 0) return 0;
    const vapid = await this.vapidKeys();
    const body = JSON.stringify(payload);
    const results = await Promise.all(withSubscription.map((d) => sendPush(vapid, d.data.subscription!, body, this.deps.settings.push.ttlSeconds)));
    // A subscription the push service says is gone is forgotten.
    const gone = withSubscription.filter((_d, i) => results[i] === 'gone');
    await Promise.all(
      gone.map((d) =>
        this.deps.prisma.factorEnrolment.update({ where: { id: d.id }, data: { data: { ...(d.data as DeviceData), subscription: null } as object } }),
      ),
    );
    return results.filter((r) => r === 'sent').length;
  }

  /** The open requests of the device's user (the app lists them when opened, e.g. after a missed push). */
  async pending(input: z.infer<typeof signedDeviceRequest>): Promise<DeviceOutcome<{ requests: Omit<PushPayload, 'type'>[] }>> {
    const signed = await this.signedDevice(input, canonical.pending(input.deviceId, input.time));
    if (!signed.ok) return signed;
    const rows = await this.deps.prisma.factorChallenge.findMany({
      where: { userId: signed.value.userId, factor: PUSH_CHALLENGE, consumedAt: null, verifiedAt: null, expiresAt: { gt: new Date() } },
      orderBy: { createdAt: 'desc' },
      take: 5,
    });
    return { ok: true, value: { requests: rows.map((row) => requestOf(row)) } };
  }

  /**
   * The phone's answer to a push request. Order of checks: the device's signature; the request
   * (open, this user's); deny needs no PIN; approve needs the PIN proof (counted) and the right
   * number: a wrong number ends the request. Consumed by one conditional UPDATE.
   */
  async answer(
    input: z.infer<typeof approveRequest>,
  ): Promise<DeviceOutcome<{ decision: 'approve' | 'deny'; userId: string; deviceId: string; notMe: boolean; client: string }>> {
    const { prisma } = this.deps;
    const device = await this.device(input.deviceId);
    if (!device) return fail(401, 'unknown_device');
    if (!verifySignature(device.data.publicKey, canonical.approval(input), input.signature)) return fail(401, 'bad_signature');
    const row = await prisma.factorChallenge.findFirst({ where: { id: input.challengeId, userId: device.userId, factor: PUSH_CHALLENGE } });
    if (!row) return fail(404, 'not_found');
    if (row.consumedAt || row.verifiedAt) return fail(409, 'used');
    if (row.expiresAt <= new Date()) return fail(410, 'expired');
    const data = row.data as unknown as PushRequestData;
    const close = async (state: PushRequestData['state'], extra: Partial<PushRequestData> = {}) => {
      const { count } = await prisma.factorChallenge.updateMany({
        where: { id: row.id, consumedAt: null, verifiedAt: null },
        data: { consumedAt: new Date(), data: { ...data, ...extra, state, deviceId: device.id } as object },
      });
      return count === 1;
    };
    const value = { decision: input.decision, userId: device.userId, deviceId: device.id, notMe: input.notMe, client: data.client };
    if (input.decision === 'deny') {
      return (await close('denied', { notMe: input.notMe })) ? { ok: true, value } : fail(409, 'used');
    }
    // The PIN, or the phone's biometric (an assertion bound to this request, device and number).
    const biometric = input.assertion ? device.data.biometric : undefined;
    if (input.assertion && !biometric) return fail(400, 'no_biometric');
    let counter: number | undefined;
    const pin = biometric
      ? await this.counted(device, 'biometric_failed', async () => {
          counter = await this.biometrics.verify(biometric, input.assertion, biometricChallenge(row.id, device.id, input.number));
          return counter !== undefined;
        })
      : await this.checkPin(device, 'approve', row.id, input.pinProof);
    if (!pin.ok) return pin;
    if (biometric && counter !== undefined) {
      await prisma.factorEnrolment.update({
        where: { id: device.id },
        data: { data: { ...(device.data as DeviceData), biometric: { ...biometric, counter } } as object },
      });
    }
    if (!safeEqual(input.number, data.number)) {
      await close('wrong_number');
      return fail(409, 'wrong_number');
    }
    const now = new Date();
    const { count } = await prisma.factorChallenge.updateMany({
      where: { id: row.id, consumedAt: null, verifiedAt: null, expiresAt: { gt: now } },
      data: { verifiedAt: now, data: { ...data, state: 'approved', deviceId: device.id, method: biometric ? 'biometric' : 'pin' } as object },
    });
    if (count !== 1) return fail(409, 'used');
    await prisma.factorEnrolment.update({ where: { id: device.id }, data: { lastUsedAt: now } });
    return { ok: true, value };
  }
}
