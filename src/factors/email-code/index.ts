import type { FactorModule } from '../contract.ts';
import type { FactorDependencies } from '../deps.ts';
import { emailTargets, startEmailChallenge, verifyEmailCode } from '../shared/email-challenge.ts';
import { enrolEmailAddress } from '../shared/email-enrolment.ts';
import { maskEmail } from '../shared/mask.ts';

/** TDC's default: a one-time code by email, typed back on the page. */
export function emailCodeFactor(deps: FactorDependencies): FactorModule {
  const amr = ['otp'] as const;
  const ttlSeconds = deps.settings.factors.emailCodeTtl;
  return {
    id: 'email-code',
    channel: 'email',
    amr,
    kind: 'code-to-target',
    isEnrolled: async (user) => (await emailTargets(deps, user)).length > 0,
    targets: (user) => emailTargets(deps, user),
    maskTarget: maskEmail,
    enrol: enrolEmailAddress(deps),
    start: (ctx, input) => startEmailChallenge(deps, ctx, input, { factor: 'email-code', ttlSeconds, withLink: false }),
    verify: (ctx, input) => verifyEmailCode(deps, ctx, { challengeId: input.challengeId, code: input.code ?? '', factor: 'email-code' }, amr),
  };
}
