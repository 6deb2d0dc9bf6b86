import type { Context, Middleware } from 'koa';
import { z } from 'zod';
import type { FactorModule } from '../../factors/contract.ts';
import type { ChallengeStore } from '../../factors/shared/challenges.ts';
import type { FactorRouteHost } from '../../factors/ui-contract.ts';
import { translator } from '../../i18n/i18n.ts';
import { assertCsrf } from '../../security/csrf.ts';
import type { PageRenderer } from '../../server/pages.ts';
import { readForm } from '../shared/forms.ts';
import type { SignInState } from './sign-in-state.ts';
import type { SignInSteps } from './sign-in-steps.ts';

const plainForm = z.object({ _csrf: z.string().max(200) });

export interface FactorRouteHostDependencies {
  signInOf(ctx: Context): Promise<SignInState>;
  steps: SignInSteps;
  challenges: ChallengeStore;
  pages: PageRenderer;
  form: Middleware;
  offered(ctx: Context, state: SignInState, id: string): Promise<{ module: FactorModule }>;
}

/** What a factor's own routes (its `FactorUi.routes`) may use of the sign-in they serve. */
export function factorRouteHost(deps: FactorRouteHostDependencies): FactorRouteHost {
  const { steps } = deps;
  return {
    form: deps.form,
    signIn: (ctx) => deps.signInOf(ctx),
    allowed: async (ctx, id) => (await deps.offered(ctx, await deps.signInOf(ctx), id)).module,
    recordVerified: async (ctx, module, outcome) => steps.recordVerified(ctx, await deps.signInOf(ctx), module, outcome),
    recordFailure: async (ctx, module, outcome) => steps.recordFailure(ctx, await deps.signInOf(ctx), module, outcome),
    failure: (ctx, step, failure) => steps.failure(ctx, ctx.state.signIn as SignInState, step, failure),
    render: (ctx, view) =>
      deps.pages.html(
        ctx,
        view.template,
        (ctx.state.signIn as SignInState | undefined)?.frame.locale ?? deps.pages.localeOf(ctx),
        view.model as Record<string, unknown>,
        view.status ?? 200,
      ),
    message(ctx, titleKey, messageKey, status) {
      const locale = deps.pages.localeOf(ctx);
      const t = translator(locale);
      deps.pages.html(ctx, 'message', locale, { title: t(titleKey), message: t(messageKey) }, status);
    },
    spent: (challengeId) => deps.challenges.spent(challengeId),
    readForm: (ctx) => readForm(ctx, plainForm),
    assertCsrf,
  };
}
