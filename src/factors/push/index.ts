import crypto from 'node:crypto';
import type { FactorChallenge } from '../../generated/prisma/client.ts';
import type { ChallengeContext, FactorModule, StartOutcome, VerifyOutcome } from '../contract.ts';
import type { FactorDependencies } from '../deps.ts';
import { DEVICE_TYPE, PUSH_CHALLENGE, PushDevices, requestOf, type PushRequestData } from './devices.ts';
import { approximateIp, browserSummary } from './protocol.ts';
import { heldAs } from '../shared/held-enrolments.ts';
import { noEnrolmentAtSignIn } from '../shared/no-enrolment.ts';

/**
 * amr of a push approval (RFC 8176): `swk` (the device key is a software-secured key in the phone's
 * browser) and `pin` (the PIN, checked by the server through the PIN proof).
 */
export const PUSH_AMR = ['swk', 'pin'] as const;
/** With the phone's fingerprint or face instead of the PIN: `user` (the platform verified the user). */
export const PUSH_BIOMETRIC_AMR = ['swk', 'user'] as const;

/** Two different numbers of two digits besides `number`, the three in random order. */
function choicesAround(number: string): string[] {
  const set = new Set([number]);
  while (set.size < 3) set.add(String(crypto.randomInt(10, 100)));
  return [...set].sort(() => crypto.randomInt(0, 3) - 1);
}

/**
 * Push approval with Nyckel Authenticator (the web app at /authenticator, see src/authenticator/).
 * After the password a Web Push goes to the user's phones; the sign-in page shows a number, the app
 * shows three and the user picks that one and enters the PIN; the phone signs the answer with its
 * device key (checked in PushDevices.answer). Kind `poll`: the page polls `status` and continues by
 * itself once approved. Against push fatigue: at most `push.maxPerWindow` requests per account per
 * window, none for a while after a denial, and the number matching.
 *
 * Channel `app`, like an authenticator app: something the user holds, independent of the password
 * (`knowledge`); it does not add a second factor to one from the same phone (app + QR, TOTP).
 */
export function pushFactor(deps: FactorDependencies, devices = new PushDevices(deps)): FactorModule {
  const { prisma, challenges, settings } = deps;
  const logger = deps.sms?.logger;

  async function findRequest(ctx: ChallengeContext, challengeId: string): Promise<FactorChallenge | null> {
    return challenges.find(ctx, challengeId, [PUSH_CHALLENGE]);
  }

  /** A denial (or "not me") recently: no pushes for the cool-down; retry after it. */
  async function coolDown(userId: string): Promise<number | undefined> {
    if (settings.push.denyCooldownSeconds === 0) return undefined;
    const since = new Date(Date.now() - settings.push.denyCooldownSeconds * 1000);
    const denied = await prisma.factorChallenge.findFirst({
      where: { userId, factor: PUSH_CHALLENGE, consumedAt: { gte: since }, data: { path: ['state'], equals: 'denied' } },
      orderBy: { consumedAt: 'desc' },
    });
    return denied?.consumedAt ? Math.ceil((denied.consumedAt.getTime() + settings.push.denyCooldownSeconds * 1000 - Date.now()) / 1000) : undefined;
  }

  /**
   * Requests sent in the window and not approved (approvals are no fatigue: a sign-in starts the
   * user's primary method at once); the oldest says when the next one may go.
   */
  async function overCap(userId: string): Promise<number | undefined> {
    const since = new Date(Date.now() - settings.push.windowSeconds * 1000);
    const recent = await prisma.factorChallenge.findMany({
      where: { userId, factor: PUSH_CHALLENGE, createdAt: { gte: since }, verifiedAt: null },
      select: { createdAt: true },
      orderBy: { createdAt: 'asc' },
    });
    if (recent.length < settings.push.maxPerWindow) return undefined;
    return Math.max(1, Math.ceil((recent[0].createdAt.getTime() + settings.push.windowSeconds * 1000 - Date.now()) / 1000));
  }

  function statusOf(row: FactorChallenge | null): VerifyOutcome {
    if (!row) return { status: 'failed', reason: 'expired', hint: 'expired' };
    const data = row.data as unknown as PushRequestData;
    if (row.verifiedAt) return { status: 'verified', amr: data.method === 'biometric' ? PUSH_BIOMETRIC_AMR : PUSH_AMR };
    if (data.state === 'denied') return { status: 'failed', reason: 'cancelled', hint: 'denied' };
    if (data.state === 'wrong_number') return { status: 'failed', reason: 'cancelled', hint: 'wrong_number' };
    if (row.consumedAt) return { status: 'failed', reason: 'cancelled', hint: 'cancelled' };
    if (row.expiresAt <= new Date()) return { status: 'failed', reason: 'expired', hint: 'expired' };
    return { status: 'pending', hint: 'pick', display: { number: data.number, expiresAt: row.expiresAt.getTime() } };
  }

  return {
    id: 'push',
    channel: 'app',
    amr: PUSH_AMR,
    kind: 'poll',
    ...heldAs(prisma, { type: DEVICE_TYPE }),
    targets: async () => [],
    maskTarget: (label) => label,

    // Phones are added on the account pages (a QR code scanned with the phone), not during a sign-in.
    enrol: noEnrolmentAtSignIn,

    start: async (ctx): Promise<StartOutcome> => {
      const phones = await devices.devicesOf(ctx.user.id);
      if (phones.length === 0) return { status: 'failed', reason: 'not_enrolled' };
      const cooling = await coolDown(ctx.user.id);
      if (cooling) return { status: 'failed', reason: 'cooldown', retryAfterSeconds: cooling };
      const capped = await overCap(ctx.user.id);
      if (capped) return { status: 'failed', reason: 'rate_limited', retryAfterSeconds: capped };
      const number = String(crypto.randomInt(10, 100));
      const data: PushRequestData = {
        state: 'pending',
        number,
        numbers: choicesAround(number),
        client: ctx.clientName,
        browser: browserSummary(ctx.userAgent),
        ip: approximateIp(ctx.ip),
        time: new Date().toISOString(),
      };
      const row = await prisma.$transaction(async (tx) => {
        const { challenge } = await challenges.create(tx, ctx, { factor: PUSH_CHALLENGE, ttlSeconds: settings.push.ttlSeconds });
        return tx.factorChallenge.update({ where: { id: challenge.id }, data: { data: data as object } });
      });
      const sent = await devices.sendRequest(phones, { type: 'approval', ...requestOf(row) }).catch((error: unknown) => {
        logger?.warn({ err: error }, 'push request could not be sent');
        return 0;
      });
      if (sent === 0) logger?.info({ challenge: row.id }, 'no phone could be reached by push; the app lists the request when opened');
      return { status: 'started', challengeId: row.id, browser: { number } };
    },

    status: async (ctx, challengeId) => statusOf(await findRequest(ctx, challengeId)),

    verify: async (ctx, input): Promise<VerifyOutcome> => {
      const row = await findRequest(ctx, input.challengeId);
      const status = statusOf(row);
      if (status.status !== 'verified') return status;
      // Approved on the phone: the sign-in takes it once.
      const { count } = await prisma.factorChallenge.updateMany({
        where: { id: row!.id, verifiedAt: { not: null }, consumedAt: null },
        data: { consumedAt: new Date() },
      });
      return count === 1 ? status : { status: 'failed', reason: 'used' };
    },

    cancel: async (ctx, challengeId) => {
      const row = await findRequest(ctx, challengeId);
      if (!row) return;
      await prisma.factorChallenge.updateMany({
        where: { id: row.id, consumedAt: null, verifiedAt: null },
        data: { consumedAt: new Date(), data: { ...(row.data as object), state: 'cancelled' } },
      });
    },
  };
}
