import type { ChallengeContext, FactorModule } from '../contract.ts';
import type { FactorDependencies } from '../deps.ts';
import { EMAIL_FAMILY } from './email-challenge.ts';
import { newCode } from './challenges.ts';
import { maskEmail } from './mask.ts';
import { admitSend } from './send-admission.ts';
import { translator } from '../../i18n/i18n.ts';

/**
 * Enrolling an email factor = proving a registered, not yet verified, address: a code goes there and
 * is typed back; the address is then verified and can receive sign-in links and codes.
 */
export function enrolEmailAddress(deps: FactorDependencies): FactorModule['enrol'] {
  return {
    targets: async (user) => {
      const rows = await deps.prisma.userEmail.findMany({ where: { userId: user.id, verifiedAt: null }, orderBy: { createdAt: 'asc' } });
      return rows.map((row) => ({ id: row.id, masked: maskEmail(row.address) }));
    },
    begin: async (ctx: ChallengeContext, input) => {
      if (!input.targetId || !/^[0-9a-f-]{36}$/i.test(input.targetId)) return { status: 'failed', reason: 'not_enrolled' };
      const row = await deps.prisma.userEmail.findFirst({ where: { id: input.targetId, userId: ctx.user.id, verifiedAt: null } });
      if (!row) return { status: 'failed', reason: 'not_enrolled' };
      // An address being proven may be anyone's: its mail has the same cooldown and budgets as any.
      const held = await admitSend(deps.prisma, deps.sends.mail, ctx, { factor: 'email-enrolment', target: row.address, masked: maskEmail(row.address) });
      if (held) return held;
      const code = newCode();
      const ttlSeconds = deps.settings.factors.emailCodeTtl;
      const t = translator(ctx.locale);
      const { challenge } = await deps.prisma.$transaction(async (tx) => {
        const created = await deps.challenges.create(tx, ctx, { factor: 'email-enrolment', target: row.address, ttlSeconds, code });
        const context = { code, minutes: Math.round(ttlSeconds / 60), clientName: ctx.clientName, userEmail: ctx.user.email };
        await deps.mail.enqueue(tx, {
          to: row.address,
          subject: t('mail.code.subject', { client: ctx.clientName, code }),
          text: deps.views.render('mail/sign-in.txt', ctx.locale, context),
          html: deps.views.render('mail/sign-in.html', ctx.locale, context),
          purpose: 'email-enrolment',
          locale: ctx.locale,
          clientId: ctx.clientId,
        });
        return created;
      });
      deps.mail.kick();
      return { status: 'started', challengeId: challenge.id, maskedTarget: maskEmail(row.address) };
    },
    complete: async (ctx, input) => {
      const outcome = await deps.challenges.verifyCode(ctx, input.challengeId, input.code ?? '', EMAIL_FAMILY, ['email-enrolment']);
      if (outcome.status !== 'verified' || !outcome.target) return outcome;
      await deps.prisma.userEmail.updateMany({
        where: { userId: ctx.user.id, address: outcome.target, verifiedAt: null },
        data: { verifiedAt: new Date() },
      });
      return { ...outcome, amr: ['otp'] };
    },
  };
}
