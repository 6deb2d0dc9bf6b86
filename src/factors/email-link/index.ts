import type { FactorModule } from '../contract.ts';
import type { FactorDependencies } from '../deps.ts';
import { EMAIL_FAMILY, emailTargets, startEmailChallenge, verifyEmailCode } from '../shared/email-challenge.ts';
import { enrolEmailAddress } from '../shared/email-enrolment.ts';
import { maskEmail } from '../shared/mask.ts';

/**
 * IDEP.WEB's one-time sign-in link: valid 30 minutes, single use, completed only in the browser that
 * started the sign-in. The mail also carries a code, for when the link is opened elsewhere.
 */
export function emailLinkFactor(deps: FactorDependencies): FactorModule {
  const amr = ['otp'] as const;
  const ttlSeconds = deps.settings.factors.emailLinkTtl;
  return {
    id: 'email-link',
    channel: 'email',
    amr,
    kind: 'link-to-target',
    isEnrolled: async (user) => (await emailTargets(deps, user)).length > 0,
    targets: (user) => emailTargets(deps, user),
    maskTarget: maskEmail,
    enrol: enrolEmailAddress(deps),
    start: (ctx, input) => startEmailChallenge(deps, ctx, input, { factor: 'email-link', ttlSeconds, withLink: true }),
    verify: async (ctx, input) => {
      if (input.token) {
        const outcome = await deps.challenges.verifyLink(ctx, input.challengeId, input.token, EMAIL_FAMILY, ['email-link']);
        return outcome.status === 'verified' ? { ...outcome, amr } : outcome;
      }
      return verifyEmailCode(deps, ctx, { challengeId: input.challengeId, code: input.code ?? '', factor: 'email-link' }, amr);
    },
    status: async (ctx, challengeId) =>
      (await deps.challenges.isVerified(ctx, challengeId, ['email-link'])) ? { status: 'verified', amr } : { status: 'pending' },
  };
}
