import type { FactorChallenge, User } from '../../generated/prisma/client.ts';
import { translator } from '../../i18n/i18n.ts';
import type { ChallengeContext, FactorModule, FactorTarget, StartOutcome, VerifyOutcome } from '../contract.ts';
import type { FactorDependencies } from '../deps.ts';
import { newCode } from '../shared/challenges.ts';
import { maskPhone } from '../shared/mask.ts';
import { countryOf, parsePhone, SmsGuard } from './guard.ts';
import type { SmsTransport } from './transport.ts';

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
}

/**
 * A six-digit code by SMS to one of the user's verified numbers (Aiai: "Vi har nu skickat ett sms
 * till ditt registrerade mobilnummer (xxxx-xxxx72)"). NIST 800-63B calls SMS a restricted
 * authenticator, so the pages suggest a stronger method when the user has one. Before anything is
 * sent the destination country and four hourly budgets are checked (SMS pumping); a refusal is
 * audited and never reaches the provider. A typed number that is not registered gets the same
 * answer as a registered one and nothing is sent (a decoy challenge that nothing can answer).
 */
export function smsFactor(deps: FactorDependencies): FactorModule {
  const transport: SmsTransport | undefined = deps.sms?.transport;
  const guard = new SmsGuard(deps.counters, deps.settings.sms);
  const log = deps.sms?.logger;
  if (!transport) {
    log?.warn({ transport: deps.settings.sms.transport }, 'SMS cannot be sent (the dev outbox is refused in production): the SMS method is unavailable');
  }

  const verifiedPhones = (user: User) =>
    deps.prisma.userPhone.findMany({ where: { userId: user.id, verifiedAt: { not: null } }, orderBy: [{ createdAt: 'asc' }] });

  async function targets(user: User): Promise<FactorTarget[]> {
    return (await verifiedPhones(user)).map((row) => ({ id: row.id, masked: maskPhone(row.e164) }));
  }

  function text(ctx: ChallengeContext, code: string): string {
    const t = translator(ctx.locale);
    const minutes = Math.round(deps.settings.sms.codeTtl / 60);
    // The last line lets browsers (WebOTP) and iOS offer the code, bound to the issuer's host.
    return `${t('sms.text', { client: ctx.clientName, code, minutes })}\n\n@${new URL(ctx.issuer).hostname} #${code}`;
  }

  async function send(ctx: ChallengeContext, input: { e164: string; decoy: boolean; sends: number; factor?: string }): Promise<StartOutcome> {
    if (!transport) return { status: 'failed', reason: 'not_enrolled' };
    const audit = { userId: ctx.user.id, ip: ctx.ip, userAgent: ctx.userAgent };
    const refusal = await guard.take({ e164: input.e164, userId: ctx.user.id, ip: ctx.ip });
    if (refusal) {
      await deps.sms?.audit.record('sms.refused', {
        ...audit,
        data: { reason: refusal.reason, country: countryOf(input.e164) ?? null, to: maskPhone(input.e164), client: ctx.clientId },
      });
      return refusal.reason === 'country'
        ? { status: 'failed', reason: 'country_not_allowed' }
        : { status: 'failed', reason: 'rate_limited', retryAfterSeconds: refusal.retryAfterSeconds };
    }
    const code = newCode();
    if (!input.decoy) {
      // Sent before anything is written: a failed send leaves the earlier challenge as it was and no new one.
      try {
        if (transport.kind === 'text') await transport.send({ to: input.e164, body: text(ctx, code), purpose: FACTOR });
        else await transport.start({ to: input.e164, locale: ctx.locale });
      } catch (error) {
        const message = error instanceof Error ? error.message : 'unknown error';
        log?.warn({ transport: transport.name, to: maskPhone(input.e164), error: message }, 'SMS could not be sent');
        await deps.sms?.audit.record('sms.failed', { ...audit, data: { transport: transport.name, to: maskPhone(input.e164), error: message } });
        return { status: 'failed', reason: 'send_failed' };
      }
    }
    const data: SmsChallengeData = { ...(input.decoy ? { decoy: true } : {}), ...(transport.kind === 'verify' ? { provider: 'twilio-verify' } : {}) };
    const challenge = await deps.prisma.$transaction(async (tx) => {
      const created = await deps.challenges.create(tx, ctx, {
        factor: input.factor ?? FACTOR,
        target: input.e164,
        ttlSeconds: deps.settings.sms.codeTtl,
        // With Twilio Verify there is no code of ours to store.
        code: transport.kind === 'text' ? code : undefined,
        decoy: input.decoy,
        sends: input.sends,
      });
      if (!data.provider) return created.challenge;
      return tx.factorChallenge.update({ where: { id: created.challenge.id }, data: { data: { ...(created.challenge.data as object), ...data } } });
    });
    return { status: 'started', challengeId: challenge.id, maskedTarget: maskPhone(input.e164) };
  }

  async function start(ctx: ChallengeContext, input: { targetId?: string; typed?: string; resendOf?: string }): Promise<StartOutcome> {
    if (input.resendOf) {
      const previous = await deps.challenges.find(ctx, input.resendOf, [FACTOR]);
      if (!previous || !previous.target) return { status: 'failed', reason: 'expired' };
      const wait = previous.lastSentAt.getTime() + deps.settings.factors.resendCooldownSeconds * 1000 - Date.now();
      if (wait > 0) return { status: 'failed', reason: 'cooldown', retryAfterSeconds: Math.ceil(wait / 1000) };
      return send(ctx, { e164: previous.target, decoy: Boolean((previous.data as SmsChallengeData).decoy), sends: previous.sends + 1 });
    }
    const phones = await verifiedPhones(ctx.user);
    if (input.typed) {
      const e164 = parsePhone(input.typed, deps.settings.sms.allowedCountries[0]);
      if (!e164) return { status: 'failed', reason: 'invalid_number' };
      return send(ctx, { e164, decoy: !phones.some((row) => row.e164 === e164), sends: 1 });
    }
    const row = phones.find((phone) => phone.id === input.targetId);
    if (!row) return { status: 'failed', reason: 'not_enrolled' };
    return send(ctx, { e164: row.e164, decoy: false, sends: 1 });
  }

  async function verify(ctx: ChallengeContext, input: { challengeId: string; code?: string }): Promise<VerifyOutcome> {
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
