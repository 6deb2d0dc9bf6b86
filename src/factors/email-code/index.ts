import type { FactorModule } from '../contract.ts';
import type { FactorDependencies } from '../deps.ts';
import { emailFactorBase, verifyEmailCode } from '../shared/email-challenge.ts';

/** TDC's default: a one-time code by email, typed back on the page. */
export function emailCodeFactor(deps: FactorDependencies): FactorModule {
  const base = emailFactorBase(deps, { id: 'email-code', kind: 'code-to-target', ttlSeconds: deps.settings.factors.emailCodeTtl, withLink: false });
  return {
    ...base,
    verify: (ctx, input) => verifyEmailCode(deps, ctx, { challengeId: input.challengeId, code: input.code ?? '', factor: 'email-code' }, base.amr),
  };
}
