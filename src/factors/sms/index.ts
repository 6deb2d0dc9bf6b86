import type { FactorChallenge, User } from '../../generated/prisma/client.ts';
import type { ChallengeContext, FactorModule, FactorTarget, StartOutcome, VerifyOutcome } from '../contract.ts';
import type { FactorDependencies } from '../deps.ts';
import { newCode } from '../shared/challenges.ts';
import { maskPhone } from '../shared/mask.ts';
import { admitSend } from '../shared/send-admission.ts';
import { countryAllowed, countryOf, parsePhone } from './guard.ts';
import type { SmsTransport } from './transport.ts';
import type { Logger } from '../../logger.ts';
import { smsDelivery } from './delivery.ts';

/** Wrong SMS codes count against their own failure lock, across sessions and resends. */
export const SMS_FAMILY = 'sms';
const FACTOR = 'sms';
/** Challenges that prove a registered number before it can receive sign-in codes. */
const ENROLMENT = 'phone-enrolment';

/** What an SMS challenge row carries besides the ChallengeStore's own fields. */
interface SmsChallengeData {
  decoy?: boolean;
  /** Set when Twilio Verify made the code: the answer is checked by Twilio, not against a hash. */
  provider?: 'twilio-verify';
  /** The number was typed (not chosen from the list): its texts are sent after the answer. */
  typed?: boolean;
  /** A text sent after the answer that the provider refused; the code page says so. */
  deliveryFailed?: boolean;
}

/**
 * A six-digit code by SMS to one of the user's verified numbers (Aiai: "Vi har nu skickat ett sms
 * till ditt registrerade mobilnummer (xxxx-xxxx72)"). NIST 800-63B calls SMS a restricted
 * authenticator, so the pages suggest a stronger method when the user has one. Before anything is
 * sent the destination country, the cooldown and four hourly budgets are checked (SMS pumping); a
 * refusal is audited and never reaches the provider. A typed number that is not registered gets the
 * same answer as a registered one, in the same time, and nothing is sent (a decoy challenge that
 * nothing can answer); a registered typed number gets its text after the answer.
 */
export function smsFactor(deps: FactorDependencies): FactorModule {
  const transport: SmsTransport | undefined = deps.sms?.transport;
  const log = deps.sms?.logger;
  if (!transport) {
    log?.warn({ transport: deps.settings.sms.transport }, 'SMS cannot be sent (the dev outbox is refused in production): the SMS method is unavailable');
  }

  const verifiedPhones = (user: User) =>
    deps.prisma.userPhone.findMany({ where: { userId: user.id, verifiedAt: { not: null } }, orderBy: [{ createdAt: 'asc' }] });

  async function targets(user: User): Promise<FactorTarget[]> {
    return (await verifiedPhones(user)).map((row) => ({ id: row.id, masked: maskPhone(row.e164) }));
  }

  const delivery = transport ? smsDelivery(deps, transport, FACTOR, log) : undefined;

  async function send(
    ctx: ChallengeContext,
    input: { e164: string; decoy: boolean; sends: number; factor?: string; typed?: boolean; resend?: boolean },
  ): Promise<StartOutcome> {
    if (!transport) return { status: 'failed', reason: 'not_enrolled' };
    const factor = input.factor ?? FACTOR;
    const masked = maskPhone(input.e164);
    const country = countryOf(input.e164) ?? null;
    if (!countryAllowed(input.e164, deps.settings.sms.allowedCountries)) {
      await deps.sends.sms.recordRefusal(ctx, { reason: 'country' }, { country, to: masked });
      return { status: 'failed', reason: 'country_not_allowed' };
    }
    const held = await admitSend(deps.prisma, deps.sends.sms, ctx, { factor, target: input.e164, masked, resend: input.resend, audit: { country } });
    if (held) return held;
    const code = newCode();
    // A typed number is answered before any provider is called, registered or not, so the time of
    // the answer does not tell whether it is registered. (The dev outbox only writes a row.)
    const later = Boolean(input.typed) && transport.name !== 'outbox';
    if (!input.decoy && !later) {
      // Sent before anything is written: a failed send leaves the earlier challenge as it was and no new one.
      try {
        await delivery!.deliver(ctx, input.e164, code);
      } catch (error) {
        await delivery!.recordSendFailure(ctx, input.e164, error);
        await deps.sends.sms.release(ctx, input.e164);
        return { status: 'failed', reason: 'send_failed' };
      }
    }
    const data: SmsChallengeData = {
      ...(input.decoy ? { decoy: true } : {}),
      ...(input.typed ? { typed: true } : {}),
      ...(transport.kind === 'verify' ? { provider: 'twilio-verify' } : {}),
    };
    const challenge = await deps.prisma.$transaction(async (tx) => {
      const created = await deps.challenges.create(tx, ctx, {
        factor,
        target: input.e164,
        ttlSeconds: deps.settings.sms.codeTtl,
        // With Twilio Verify there is no code of ours to store.
        code: transport.kind === 'text' ? code : undefined,
        decoy: input.decoy,
        sends: input.sends,
      });
      if (!data.provider && !data.typed) return created.challenge;
      return tx.factorChallenge.update({ where: { id: created.challenge.id }, data: { data: { ...(created.challenge.data as object), ...data } } });
    });
    if (!input.decoy && later) delivery!.deliverLater(ctx, challenge.id, input.e164, code);
    return { status: 'started', challengeId: challenge.id, maskedTarget: masked };
  }

  async function start(ctx: ChallengeContext, input: { targetId?: string; typed?: string; resendOf?: string }): Promise<StartOutcome> {
    if (input.resendOf) {
      const previous = await deps.challenges.find(ctx, input.resendOf, [FACTOR]);
      if (!previous || !previous.target) return { status: 'failed', reason: 'expired' };
      const data = previous.data as SmsChallengeData;
      return send(ctx, { e164: previous.target, decoy: Boolean(data.decoy), typed: Boolean(data.typed), sends: previous.sends + 1, resend: true });
    }
    const phones = await verifiedPhones(ctx.user);
    if (input.typed) {
      const e164 = parsePhone(input.typed, deps.settings.sms.allowedCountries[0]);
      if (!e164) return { status: 'failed', reason: 'invalid_number' };
      return send(ctx, { e164, decoy: !phones.some((row) => row.e164 === e164), typed: true, sends: 1 });
    }
    const row = phones.find((phone) => phone.id === input.targetId);
    if (!row) return { status: 'failed', reason: 'not_enrolled' };
    return send(ctx, { e164: row.e164, decoy: false, sends: 1 });
  }

  const verify = (ctx: ChallengeContext, input: { challengeId: string; code?: string }) => verifySmsCode(deps, transport, log, ctx, input);

  return {
    id: 'sms',
    channel: 'phone',
    amr: ['sms'],
    kind: 'code-to-target',
    restricted: true,
    isEnrolled: async (user) => Boolean(transport) && (await verifiedPhones(user)).length > 0,
    targets,
    maskTarget: maskPhone,
    // A registered number not yet proven gets a code; typing it back verifies the number.
    enrol: {
      targets: async (user) => {
        if (!transport) return [];
        const rows = await deps.prisma.userPhone.findMany({ where: { userId: user.id, verifiedAt: null }, orderBy: { createdAt: 'asc' } });
        return rows.map((row) => ({ id: row.id, masked: maskPhone(row.e164) }));
      },
      begin: async (ctx, input) => {
        if (!input.targetId || !/^[0-9a-f-]{36}$/i.test(input.targetId)) return { status: 'failed', reason: 'not_enrolled' };
        const row = await deps.prisma.userPhone.findFirst({ where: { id: input.targetId, userId: ctx.user.id, verifiedAt: null } });
        if (!row) return { status: 'failed', reason: 'not_enrolled' };
        return send(ctx, { e164: row.e164, decoy: false, sends: 1, factor: ENROLMENT });
      },
      complete: async (ctx, input) => {
        const outcome = await deps.challenges.verifyCode(ctx, input.challengeId, (input.code ?? '').replace(/\s+/g, ''), SMS_FAMILY, [ENROLMENT]);
        if (outcome.status !== 'verified' || !outcome.target) return outcome;
        await deps.prisma.userPhone.updateMany({ where: { userId: ctx.user.id, e164: outcome.target, verifiedAt: null }, data: { verifiedAt: new Date() } });
        return { ...outcome, amr: ['sms'] };
      },
    },
    start,
    verify,
  };
}

/** An SMS code: checked against its hash, or asked of Twilio Verify when Verify sent it. */
export async function verifySmsCode(
  deps: FactorDependencies,
  transport: SmsTransport | undefined,
  log: Logger | undefined,
  ctx: ChallengeContext,
  input: { challengeId: string; code?: string },
): Promise<VerifyOutcome> {
  const code = (input.code ?? '').replace(/\s+/g, '');
  const challenge = await deps.challenges.find(ctx, input.challengeId, [FACTOR]);
  let outcome: VerifyOutcome;
  if ((challenge?.data as SmsChallengeData | undefined)?.provider === 'twilio-verify') {
    try {
      outcome = await deps.challenges.verifyExternally(ctx, input.challengeId, SMS_FAMILY, [FACTOR], (row: FactorChallenge) =>
        !(row.data as SmsChallengeData).decoy && row.target && transport?.kind === 'verify' ? transport.check({ to: row.target, code }) : false,
      );
    } catch (error) {
      log?.warn({ error: error instanceof Error ? error.message : 'unknown error' }, 'SMS code could not be checked with Twilio Verify');
      return { status: 'failed', reason: 'check_failed' };
    }
  } else {
    outcome = await deps.challenges.verifyCode(ctx, input.challengeId, code, SMS_FAMILY, [FACTOR]);
  }
  return outcome.status === 'verified' ? { ...outcome, amr: ['sms'] } : outcome;
}
