import type { FactorModule } from '../contract.ts';
import type { FactorDependencies } from '../deps.ts';
import { EMAIL_FAMILY, emailFactorBase, verifyEmailCode } from '../shared/email-challenge.ts';

/**
 * IDEP.WEB's one-time sign-in link: valid 30 minutes, single use, completed only in the browser that
 * started the sign-in. The mail also carries a code, for when the link is opened elsewhere.
 */
export function emailLinkFactor(deps: FactorDependencies): FactorModule {
  const base = emailFactorBase(deps, { id: 'email-link', kind: 'link-to-target', ttlSeconds: deps.settings.factors.emailLinkTtl, withLink: true });
  return {
    ...base,
    verify: async (ctx, input) => {
      if (input.token) {
        const outcome = await deps.challenges.verifyLink(ctx, input.challengeId, input.token, EMAIL_FAMILY, ['email-link']);
        return outcome.status === 'verified' ? { ...outcome, amr: base.amr } : outcome;
      }
      return verifyEmailCode(deps, ctx, { challengeId: input.challengeId, code: input.code ?? '', factor: 'email-link' }, base.amr);
    },
    status: async (ctx, challengeId) =>
      (await deps.challenges.isVerified(ctx, challengeId, ['email-link'])) ? { status: 'verified', amr: base.amr } : { status: 'pending' },
  };
}
