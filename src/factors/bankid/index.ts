import type { Settings } from '../../config/settings.ts';
import { AuditLog } from '../../accounts/audit.ts';
import type { FactorChallenge, User } from '../../generated/prisma/client.ts';
import { safeEqual } from '../../security/crypto.ts';
import type { ChallengeContext, FactorModule, FailureReason, StartOutcome, VerifyOutcome } from '../contract.ts';
import type { FactorDependencies } from '../deps.ts';
import { BANKID_TYPE, bindingOf, bindPersonalNumber, personalNumberMac } from './binding.ts';
import { BankIdClient, BankIdError, type CollectResult } from './client.ts';
import { isMobileDevice } from './device.ts';
import { autostartLink, qrPayload } from './qr.ts';

/** The challenge rows of a sign-in with BankID, and of binding a BankID to the account. */
export const BANKID_FACTOR = 'bankid';
export const BANKID_ENROLMENT = 'eid-enrolment';
/** BankID ends an order unanswered after about three minutes (expiredTransaction); a little more here. */
const ORDER_TTL_MS = 4 * 60 * 1000;
/** Orders one sign-in may make in ORDER_WINDOW_MS (each "Try again" or reload makes one). */
const ORDERS_PER_WINDOW = 10;
const ORDER_WINDOW_MS = 10 * 60 * 1000;
/** BankID asks relying parties to collect every two seconds. */
const COLLECT_INTERVAL_MS = 2000;
/** What the BankID app shows above the request (userVisibleData). */
const SIGN_IN_TO: Record<string, string> = { sv: 'Inloggning till', da: 'Log ind på', en: 'Sign in to' };
const QR_PURPOSE = 'bankid-qr';
/** Where BankID's mark is served when NYCKEL_BANKID_LOGO_FILE supplies it (see ui.ts). */
export const BANKID_LOGO_PATH = '/assets/bankid-logo.svg';
const PNR_PURPOSE = 'bankid-completed';

interface OrderData {
  orderRef: string;
  autoStartToken: string;
  /** qrStartToken and qrStartSecret, sealed (bound to the orderRef). */
  qr: string;
  startedAt: number;
  state: 'pending' | 'complete' | 'failed';
  hint?: string;
  reason?: FailureReason;
  /** Enrolment only: the personal number of the completed order, sealed, until the binding is stored. */
  completed?: string;
}

/** What each failing hintCode means for the sign-in. */
function reasonOf(hint: string | undefined): FailureReason {
  if (hint === 'userCancel' || hint === 'cancelled' || hint === 'userDeclinedCall') return 'cancelled';
  return 'expired';
}

/** How an order ends: failed (once, with the reason), or verified for the bound person or the one to bind. */
function orderEndings(prisma: FactorDependencies['prisma'], box: FactorDependencies['box'], audit: AuditLog, amr: readonly string[]) {
  /** Ends an order as failed (once); the user is told why by `hint`. */
  async function fail(row: FactorChallenge, data: OrderData, reason: FailureReason, hint?: string): Promise<VerifyOutcome> {
    await prisma.factorChallenge.updateMany({
      where: { id: row.id, consumedAt: null, verifiedAt: null },
      data: { consumedAt: new Date(), data: { ...data, state: 'failed', reason, hint } as object },
    });
    return { status: 'failed', reason, hint };
  }

  /** What the completed order proves: the bound person (sign-in) or whom to bind (enrolment). */
  async function completed(
    ctx: ChallengeContext,
    row: FactorChallenge,
    data: OrderData,
    result: Extract<CollectResult, { status: 'complete' }>,
  ): Promise<VerifyOutcome> {
    const personalNumber = result.completionData.user.personalNumber;
    const now = new Date();
    if (row.factor === BANKID_ENROLMENT) {
      const sealed = Buffer.from(box.seal(PNR_PURPOSE, personalNumber, row.id)).toString('base64');
      await prisma.factorChallenge.updateMany({
        where: { id: row.id, verifiedAt: null, consumedAt: null },
        data: { verifiedAt: now, data: { ...data, state: 'complete', hint: undefined, completed: sealed } as object },
      });
      return { status: 'verified', amr };
    }
    const binding = await bindingOf(prisma, ctx.user.id);
    if (!binding || !safeEqual(personalNumberMac(box, personalNumber), binding.mac)) {
      // Whose BankID it was is neither shown nor kept.
      await audit.record('factor.failed', {
        userId: ctx.user.id,
        data: { factor: BANKID_FACTOR, reason: 'identity_mismatch' },
        ip: ctx.ip,
        userAgent: ctx.userAgent,
      });
      return fail(row, data, 'identity_mismatch');
    }
    await prisma.factorChallenge.updateMany({
      where: { id: row.id, verifiedAt: null, consumedAt: null },
      data: { verifiedAt: now, data: { ...data, state: 'complete', hint: undefined } as object },
    });
    await prisma.factorEnrolment.update({ where: { id: binding.id }, data: { lastUsedAt: now } });
    return { status: 'verified', amr };
  }

  return { fail, completed };
}

/** Orders at BankID for one sign-in: found, started (a few per window), and the open ones cancelled. */
function bankIdOrders(prisma: FactorDependencies['prisma'], box: FactorDependencies['box'], client: BankIdClient | undefined, config: Settings['bankid']) {
  async function findOrder(ctx: ChallengeContext, challengeId: string, factors: string[]) {
    if (!/^[0-9a-f-]{36}$/i.test(challengeId)) return null;
    return prisma.factorChallenge.findFirst({ where: { id: challengeId, userId: ctx.user.id, uid: ctx.uid, factor: { in: factors } } });
  }

  /** Closes the open orders of this sign-in (a new one replaces them), cancelling them at BankID. */
  async function cancelOpen(ctx: ChallengeContext, factor: string, onlyId?: string) {
    const open = await prisma.factorChallenge.findMany({
      where: { uid: ctx.uid, userId: ctx.user.id, factor, consumedAt: null, verifiedAt: null, ...(onlyId ? { id: onlyId } : {}) },
    });
    for (const row of open) {
      const data = row.data as unknown as OrderData;
      const { count } = await prisma.factorChallenge.updateMany({
        where: { id: row.id, consumedAt: null, verifiedAt: null },
        data: { consumedAt: new Date(), data: { ...data, state: 'failed', reason: 'cancelled', hint: 'cancelled' } as object },
      });
      // Best effort: BankID also ends an order by itself after a few minutes.
      if (count === 1 && client) await client.cancel(data.orderRef).catch(() => undefined);
    }
  }

  async function startOrder(ctx: ChallengeContext, factor: string): Promise<StartOutcome> {
    if (!client) return { status: 'failed', reason: 'not_enrolled' };
    // Every showing of the page makes an order at BankID: a sign-in gets a few, not a flood.
    const since = new Date(Date.now() - ORDER_WINDOW_MS);
    const recent = await prisma.factorChallenge.findMany({
      where: { uid: ctx.uid, userId: ctx.user.id, factor, createdAt: { gt: since } },
      orderBy: { createdAt: 'asc' },
      select: { createdAt: true },
    });
    if (recent.length >= ORDERS_PER_WINDOW) {
      const retryAfterSeconds = Math.max(1, Math.ceil((recent[recent.length - ORDERS_PER_WINDOW].createdAt.getTime() + ORDER_WINDOW_MS - Date.now()) / 1000));
      return { status: 'failed', reason: 'rate_limited', retryAfterSeconds };
    }
    await cancelOpen(ctx, factor);
    let order;
    try {
      order = await client.auth({
        endUserIp: ctx.ip.replace(/^::ffff:/, ''),
        userVisibleData: `${SIGN_IN_TO[ctx.locale] ?? SIGN_IN_TO.en} ${ctx.clientName}`,
        pinCode: config?.requirePin,
      });
    } catch (error) {
      if (!(error instanceof BankIdError)) throw error;
      return { status: 'failed', reason: 'provider_unavailable' };
    }
    const data: OrderData = {
      orderRef: order.orderRef,
      autoStartToken: order.autoStartToken,
      qr: Buffer.from(box.seal(QR_PURPOSE, JSON.stringify({ token: order.qrStartToken, secret: order.qrStartSecret }), order.orderRef)).toString('base64'),
      startedAt: Date.now(),
      state: 'pending',
      hint: 'outstandingTransaction',
    };
    const row = await prisma.factorChallenge.create({
      data: {
        uid: ctx.uid,
        userId: ctx.user.id,
        factor,
        browserHash: ctx.browserHash,
        data: data as object,
        expiresAt: new Date(Date.now() + ORDER_TTL_MS),
      },
    });
    const launchUrl = autostartLink(order.autoStartToken, isMobileDevice(ctx.userAgent));
    return { status: 'started', challengeId: row.id, browser: { autoStartToken: order.autoStartToken, launchUrl } };
  }

  return { findOrder, cancelOpen, startOrder };
}

/**
 * BankID (Swedish eID) as a second factor, through BankID's RP API v6 over mutual TLS. An order is
 * made at /auth; the page shows "BankID on this device" (autostart link) and "Mobile BankID on another
 * device" (the animated QR code, computed here each second from the sealed qrStartSecret); the server
 * collects at most every two seconds per order. The completed order's personal number must be the
 * one bound to the account (compared by keyed hash); a different person fails with a neutral message.
 *
 * amr: `swk` (a software-secured key, RFC 8176) and `user` (BankID always asks for the security code
 * or a biometric), or `pin` when NYCKEL_BANKID_REQUIRE_PIN makes BankID ask for the security code.
 */
export function bankIdFactor(deps: FactorDependencies): FactorModule {
  const { prisma, box, settings } = deps;
  const config = settings.bankid;
  const client = config ? new BankIdClient({ ...config, passphrase: config.passphrase }) : undefined;
  const amr = ['swk', config?.requirePin ? 'pin' : 'user'] as const;
  const audit = deps.sms?.audit ?? new AuditLog(prisma);

  const openQr = (data: OrderData) =>
    JSON.parse(box.open(QR_PURPOSE, Buffer.from(data.qr, 'base64'), data.orderRef).toString('utf8')) as { token: string; secret: string };

  const { findOrder, cancelOpen, startOrder } = bankIdOrders(prisma, box, client, config);

  const { fail, completed } = orderEndings(prisma, box, audit, amr);

  async function statusOf(ctx: ChallengeContext, challengeId: string, factors: string[]): Promise<VerifyOutcome> {
    const row = await findOrder(ctx, challengeId, factors);
    if (!row || !client) return { status: 'failed', reason: 'expired', hint: 'expiredTransaction' };
    const data = row.data as unknown as OrderData;
    if (row.verifiedAt) return { status: 'verified', amr };
    if (data.state === 'failed' || row.consumedAt) return { status: 'failed', reason: data.reason ?? 'cancelled', hint: data.hint };
    if (row.expiresAt <= new Date()) return fail(row, data, 'expired', 'expiredTransaction');
    // One real /collect per order every two seconds, whoever polls; the others read the stored state.
    const { count } = await prisma.factorChallenge.updateMany({
      where: { id: row.id, consumedAt: null, verifiedAt: null, lastSentAt: { lte: new Date(Date.now() - COLLECT_INTERVAL_MS) } },
      data: { lastSentAt: new Date() },
    });
    let hint = data.hint;
    if (count === 1) {
      let result: CollectResult;
      try {
        result = await client.collect(data.orderRef);
      } catch (error) {
        if (!(error instanceof BankIdError)) throw error;
        if (error.kind === 'refused' && error.errorCode === 'notFound') return fail(row, data, 'expired', 'expiredTransaction');
        return fail(row, data, 'provider_unavailable', error.kind === 'refused' && error.errorCode === 'maintenance' ? 'maintenance' : 'internalError');
      }
      if (result.status === 'complete') return completed(ctx, row, data, result);
      if (result.status === 'failed') return fail(row, data, reasonOf(result.hintCode), result.hintCode);
      hint = result.hintCode ?? hint;
      if (hint !== data.hint) {
        await prisma.factorChallenge.updateMany({ where: { id: row.id, consumedAt: null, verifiedAt: null }, data: { data: { ...data, hint } as object } });
      }
    }
    const { token, secret } = openQr(data);
    return { status: 'pending', hint, qr: qrPayload(token, secret, (Date.now() - data.startedAt) / 1000) };
  }

  /** The one caller that turns a verified order into a verified factor (a conditional UPDATE). */
  async function consume(ctx: ChallengeContext, challengeId: string, factor: string): Promise<FactorChallenge | undefined> {
    const row = await findOrder(ctx, challengeId, [factor]);
    if (!row?.verifiedAt) return undefined;
    const { count } = await prisma.factorChallenge.updateMany({
      where: { id: row.id, verifiedAt: { not: null }, consumedAt: null },
      data: { consumedAt: new Date() },
    });
    return count === 1 ? row : undefined;
  }

  const isConfigured = () => Boolean(client);

  /**
   * The page's additions: BankID's mark (when the installation supplies it), which way to start is the
   * default (on a phone the app on this device, on a computer the QR code), and the links that open
   * the app of an order still open (for the page shown again without its script).
   */
  async function pageModel(ctx: ChallengeContext, challengeId?: string) {
    const mobile = isMobileDevice(ctx.userAgent);
    const row = challengeId ? await findOrder(ctx, challengeId, [BANKID_FACTOR, BANKID_ENROLMENT]) : null;
    const token = row && !row.consumedAt && !row.verifiedAt ? (row.data as unknown as OrderData).autoStartToken : undefined;
    return {
      logo: config?.logoFile ? BANKID_LOGO_PATH : undefined,
      defaultMode: mobile ? 'same' : 'qr',
      launchUrl: token ? autostartLink(token, mobile) : undefined,
    };
  }

  return {
    id: 'bankid',
    channel: 'eid',
    amr,
    kind: 'poll',
    isEnrolled: async (user: User) => isConfigured() && Boolean(await bindingOf(prisma, user.id)),
    targets: async (user: User) => {
      const binding = isConfigured() ? await bindingOf(prisma, user.id) : undefined;
      return binding ? [{ id: binding.id, masked: binding.masked }] : [];
    },
    maskTarget: (masked) => masked,
    pageModel,

    enrol: {
      // Binding a BankID proves only the BankID: at sign-in only a user without any second factor may.
      createsCredential: true,
      targets: async (user: User) => (isConfigured() && !(await bindingOf(prisma, user.id)) ? [{ id: 'bankid', masked: 'BankID' }] : []),
      begin: (ctx) => startOrder(ctx, BANKID_ENROLMENT),
      complete: async (ctx, input): Promise<VerifyOutcome> => {
        const status = await statusOf(ctx, input.challengeId, [BANKID_ENROLMENT]);
        if (status.status !== 'verified') return status;
        return prisma.$transaction(async (tx) => {
          const row = await tx.factorChallenge.findFirst({ where: { id: input.challengeId, userId: ctx.user.id, uid: ctx.uid, factor: BANKID_ENROLMENT } });
          const { completed: sealed, ...rest } = (row?.data ?? {}) as unknown as Partial<OrderData>;
          // Consumed once; the sealed number does not outlive the binding it makes.
          const { count } = await tx.factorChallenge.updateMany({
            where: { id: input.challengeId, verifiedAt: { not: null }, consumedAt: null },
            data: { consumedAt: new Date(), data: rest as object },
          });
          if (!row || !sealed || count !== 1) return { status: 'failed', reason: 'used' } as const;
          const personalNumber = box.open(PNR_PURPOSE, Buffer.from(sealed, 'base64'), row.id).toString('utf8');
          const binding = await bindPersonalNumber(tx, box, ctx.user.id, personalNumber);
          return { status: 'verified', amr, target: (binding.data as unknown as { masked: string }).masked } as const;
        });
      },
    },

    start: (ctx) => startOrder(ctx, BANKID_FACTOR),
    // The page of a sign-in and the page of a binding poll the same way.
    status: (ctx, challengeId) => statusOf(ctx, challengeId, [BANKID_FACTOR, BANKID_ENROLMENT]),
    verify: async (ctx, input): Promise<VerifyOutcome> => {
      const status = await statusOf(ctx, input.challengeId, [BANKID_FACTOR]);
      if (status.status !== 'verified') return status;
      return (await consume(ctx, input.challengeId, BANKID_FACTOR)) ? { status: 'verified', amr } : { status: 'failed', reason: 'used' };
    },
    cancel: async (ctx, challengeId) => {
      await cancelOpen(ctx, BANKID_FACTOR, /^[0-9a-f-]{36}$/i.test(challengeId) ? challengeId : '00000000-0000-0000-0000-000000000000');
      await cancelOpen(ctx, BANKID_ENROLMENT, /^[0-9a-f-]{36}$/i.test(challengeId) ? challengeId : '00000000-0000-0000-0000-000000000000');
    },
  };
}

export { BANKID_TYPE };
