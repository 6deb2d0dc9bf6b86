import type { User } from '../../generated/prisma/client.ts';
import { translator } from '../../i18n/i18n.ts';
import type { ChallengeContext, FactorModule, FactorTarget, StartOutcome, VerifyOutcome } from '../contract.ts';
import { enrolEmailAddress } from './email-enrolment.ts';
import type { FactorDependencies } from '../deps.ts';
import { newCode } from './challenges.ts';
import { maskEmail } from './mask.ts';
import { admitSend } from './send-admission.ts';

/** Both email factors share one failure lock: a code is a code whichever mail carried it. */
export const EMAIL_FAMILY = 'email';
export const EMAIL_FACTORS = ['email-code', 'email-link'];

/** The user's verified contact addresses: the only places a sign-in mail may go. */
export async function emailTargets(deps: FactorDependencies, user: User): Promise<FactorTarget[]> {
  const rows = await deps.prisma.userEmail.findMany({
    where: { userId: user.id, verifiedAt: { not: null } },
    orderBy: [{ createdAt: 'asc' }],
  });
  rows.sort((a, b) => Number(b.address === user.email) - Number(a.address === user.email));
  return rows.map((row) => ({ id: row.id, masked: maskEmail(row.address) }));
}

async function resolveAddress(deps: FactorDependencies, user: User, input: { targetId?: string; typed?: string }) {
  const rows = await deps.prisma.userEmail.findMany({ where: { userId: user.id, verifiedAt: { not: null } } });
  if (input.targetId) return rows.find((row) => row.id === input.targetId)?.address;
  const typed = input.typed?.trim().toLowerCase();
  return typed ? rows.find((row) => row.address.toLowerCase() === typed)?.address : undefined;
}

/**
 * Sends a sign-in code (and, for the link factor, a link) to one of the user's addresses. An address
 * that is not registered gets the same answer and the same work (a decoy challenge that nothing can
 * answer), so the page does not tell which addresses are registered.
 */
export async function startEmailChallenge(
  deps: FactorDependencies,
  ctx: ChallengeContext,
  input: { targetId?: string; typed?: string; resendOf?: string },
  options: { factor: 'email-code' | 'email-link'; ttlSeconds: number; withLink: boolean },
): Promise<StartOutcome> {
  let address: string | undefined;
  let decoyTarget: string | undefined;
  let sends = 1;
  if (input.resendOf) {
    const previous = await deps.challenges.find(ctx, input.resendOf, [options.factor]);
    if (!previous || !previous.target) return { status: 'failed', reason: 'expired' };
    if ((previous.data as { decoy?: boolean }).decoy) decoyTarget = previous.target;
    else address = previous.target;
    sends = previous.sends + 1;
  } else {
    address = await resolveAddress(deps, ctx.user, input);
    if (!address) decoyTarget = input.typed?.trim().toLowerCase();
  }
  if (!address && !decoyTarget) return { status: 'failed', reason: 'not_enrolled' };
  // A decoy passes the same cooldown and budgets as a real send: the answers do not tell them apart.
  const target = (address ?? decoyTarget)!;
  const held = await admitSend(deps.prisma, deps.sends.mail, ctx, {
    factor: options.factor,
    target,
    masked: maskEmail(target),
    resend: Boolean(input.resendOf),
  });
  if (held) return held;

  const code = newCode();
  const { challenge, mailed } = await deps.prisma.$transaction(async (tx) => {
    const created = await deps.challenges.create(tx, ctx, {
      factor: options.factor,
      target: address ?? decoyTarget,
      ttlSeconds: options.ttlSeconds,
      code,
      withLink: options.withLink,
      decoy: !address,
      sends,
    });
    if (!address) return { challenge: created.challenge, mailed: false };
    const link = created.linkToken ? `${ctx.issuer}/interaction/${ctx.uid}/link/${created.challenge.id}/${created.linkToken}` : undefined;
    const delivery = await deps.mail.enqueue(
      tx,
      renderSignInMail(deps, ctx, { to: address, code, link, ttlSeconds: options.ttlSeconds, factor: options.factor }),
    );
    // The pages show the delivery's state (a provider outage is retried, and the user is told).
    await tx.factorChallenge.update({
      where: { id: created.challenge.id },
      data: { data: { ...(created.challenge.data as object), deliveryId: delivery.id } },
    });
    return { challenge: created.challenge, mailed: true };
  });
  if (mailed) deps.mail.kick();
  return { status: 'started', challengeId: challenge.id, maskedTarget: maskEmail(target) };
}

function renderSignInMail(
  deps: FactorDependencies,
  ctx: ChallengeContext,
  input: { to: string; code: string; link?: string; ttlSeconds: number; factor: string },
) {
  const t = translator(ctx.locale);
  const minutes = Math.round(input.ttlSeconds / 60);
  const context = {
    code: input.code,
    link: input.link,
    minutes,
    clientName: ctx.clientName,
    userEmail: ctx.user.email,
  };
  return {
    to: input.to,
    subject: t(input.link ? 'mail.link.subject' : 'mail.code.subject', { client: ctx.clientName, code: input.code }),
    text: deps.views.render('mail/sign-in.txt', ctx.locale, context),
    html: deps.views.render('mail/sign-in.html', ctx.locale, context),
    purpose: input.factor,
    locale: ctx.locale,
    clientId: ctx.clientId,
  };
}

export async function verifyEmailCode(
  deps: FactorDependencies,
  ctx: ChallengeContext,
  input: { challengeId: string; code: string; factor: string },
  amr: readonly string[],
): Promise<VerifyOutcome> {
  const outcome = await deps.challenges.verifyCode(ctx, input.challengeId, input.code, EMAIL_FAMILY, [input.factor]);
  return outcome.status === 'verified' ? { ...outcome, amr } : outcome;
}

/** What the two email factors share: targets, masking, enrolment, sending; they differ in what the mail carries. */
export function emailFactorBase(
  deps: FactorDependencies,
  options: { id: 'email-code' | 'email-link'; kind: FactorModule['kind']; ttlSeconds: number; withLink: boolean },
): Omit<FactorModule, 'verify' | 'status'> & { amr: readonly string[] } {
  return {
    id: options.id,
    channel: 'email',
    amr: ['otp'],
    kind: options.kind,
    isEnrolled: async (user) => (await emailTargets(deps, user)).length > 0,
    targets: (user) => emailTargets(deps, user),
    maskTarget: maskEmail,
    enrol: enrolEmailAddress(deps),
    start: (ctx, input) => startEmailChallenge(deps, ctx, input, { factor: options.id, ttlSeconds: options.ttlSeconds, withLink: options.withLink }),
  };
}
