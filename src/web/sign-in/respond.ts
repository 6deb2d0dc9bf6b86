import type { Context } from 'koa';
import type { FactorModule } from '../../factors/contract.ts';
import type { Step } from '../../factors/ui-contract.ts';
import type { SignInState } from './sign-in-state.ts';
import type { SignInSteps } from './sign-in-steps.ts';

/** Does what a page kind's step says: show its page, send the browser on, or continue the sign-in. */
export async function respond(ctx: Context, steps: SignInSteps, state: SignInState, module: FactorModule, step: Step | undefined): Promise<void> {
  if (!step) return;
  if ('view' in step) return steps.render(ctx, state, step.view);
  if ('redirect' in step) return steps.redirect(ctx, step.redirect);
  if ('verified' in step) return steps.afterVerified(ctx, state, module, step.verified);
  return steps.continueOrChoose(ctx, state, module.id);
}
