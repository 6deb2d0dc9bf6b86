import crypto from 'node:crypto';
import { safeEqual } from '../../security/crypto.ts';
import type { FactorModule, VerifyOutcome } from '../contract.ts';
import type { FactorDependencies } from '../deps.ts';
import { DEVICE_TYPE, PushDevices } from './devices.ts';
import { QR_PREFIX, qrCode } from './protocol.ts';
import { heldAs } from '../shared/held-enrolments.ts';
import { noEnrolmentAtSignIn } from '../shared/no-enrolment.ts';

export const APP_QR_CHALLENGE = 'app-qr';
export const APP_QR_FAMILY = 'app-qr';
/** RFC 8176: a one-time code from a software-secured key (the QR secret in the phone's browser). */
export const APP_QR_AMR = ['otp', 'swk'] as const;
const QR_TTL_SECONDS = 5 * 60;

/** The text of the QR code: the random challenge, then the client's name for the app to show. */
export function qrChallengeText(challenge: string, clientName: string): string {
  return `${QR_PREFIX}${challenge}:${clientName.replace(/[\r\n]/g, ' ').slice(0, 80)}`;
}

/**
 * Nyckel Authenticator without network on the phone: the sign-in page shows a QR code with a random
 * challenge (bound to this sign-in, five minutes); the app scans it (or the text is pasted), asks for
 * the PIN and shows an 8-digit code computed from both with the phone's QR secret (registered with
 * the phone, see protocol.ts); the user types the code. A wrong PIN gives a wrong code. Each
 * challenge works once (conditional UPDATE); wrong codes (a wrong PIN among them) count against the
 * failure lock like an authenticator app's. Kind `code`: the page is the code page
 * with the QR code of `status`.
 */
export function appQrFactor(deps: FactorDependencies, devices = new PushDevices(deps)): FactorModule {
  const { prisma, challenges, lock } = deps;

  return {
    id: 'app-qr',
    channel: 'app',
    amr: APP_QR_AMR,
    kind: 'code',
    ...heldAs(prisma, { type: DEVICE_TYPE }),
    targets: async () => [],
    maskTarget: (label) => label,

    // The same phones as push approval, added on the account pages.
    enrol: noEnrolmentAtSignIn,

    start: async (ctx) => {
      if ((await devices.devicesOf(ctx.user.id)).length === 0) return { status: 'failed', reason: 'not_enrolled' };
      const text = qrChallengeText(crypto.randomBytes(16).toString('base64url'), ctx.clientName);
      const row = await prisma.$transaction(async (tx) => {
        const { challenge } = await challenges.create(tx, ctx, { factor: APP_QR_CHALLENGE, ttlSeconds: QR_TTL_SECONDS });
        return tx.factorChallenge.update({ where: { id: challenge.id }, data: { data: { text } } });
      });
      return { status: 'started', challengeId: row.id };
    },

    status: async (ctx, challengeId): Promise<VerifyOutcome> => {
      const row = await challenges.find(ctx, challengeId, [APP_QR_CHALLENGE]);
      if (!row || row.expiresAt <= new Date()) return { status: 'failed', reason: 'expired' };
      if (row.consumedAt) return { status: 'failed', reason: 'used' };
      return { status: 'pending', qr: (row.data as { text: string }).text, display: { expiresAt: row.expiresAt.getTime() } };
    },

    // Under the user's failure lock: wrong codes count, a right one (even repeated) never does.
    verify: (ctx, input): Promise<VerifyOutcome> =>
      lock.answer(ctx.user.id, APP_QR_FAMILY, async () => {
        const row = await challenges.find(ctx, input.challengeId, [APP_QR_CHALLENGE]);
        if (!row) return { status: 'failed', reason: 'expired' };
        const text = (row.data as { text: string }).text;
        const code = (input.code ?? '').replace(/\s+/g, '');
        const device = (await devices.devicesOf(ctx.user.id)).find((d) => {
          const secrets = devices.secretsOf(d);
          return Boolean(secrets && safeEqual(qrCode(secrets, text), code));
        });
        if (!device) {
          await prisma.factorChallenge.update({ where: { id: row.id }, data: { attempts: { increment: 1 } } });
          return { status: 'failed', reason: 'wrong_code' };
        }
        if (row.verifiedAt) return { status: 'verified', amr: APP_QR_AMR, target: device.label, repeated: true };
        if (row.consumedAt) return { status: 'failed', reason: 'used' };
        if (row.expiresAt <= new Date()) return { status: 'failed', reason: 'expired' };
        const now = new Date();
        const { count } = await prisma.factorChallenge.updateMany({
          where: { id: row.id, consumedAt: null, expiresAt: { gt: now } },
          data: { consumedAt: now, verifiedAt: now },
        });
        if (count !== 1) return { status: 'failed', reason: 'used' };
        await prisma.factorEnrolment.update({ where: { id: device.id }, data: { lastUsedAt: now } });
        return { status: 'verified', amr: APP_QR_AMR, target: device.label };
      }),
  };
}
