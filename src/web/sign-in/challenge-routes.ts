import type Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { z } from 'zod';
import type { FactorId } from '../../clients/clients-file.ts';
import { NyckelError } from '../../errors.ts';
import type { FactorModule } from '../../factors/contract.ts';
import { factorStrength } from '../../factors/sign-ins.ts';
import type { PageHost, SignInPage } from '../../factors/ui-contract.ts';
import { assertCsrf } from '../../security/csrf.ts';
import type { Signals } from '../../storage/signals.ts';
import { readForm } from '../shared/forms.ts';
import { statusWhenChanged } from '../shared/long-poll.ts';
import { respond } from './respond.ts';
import { signInState, type SignInState } from './sign-in-state.ts';
import type { SignInSteps } from './sign-in-steps.ts';

export interface ChallengeRouteDependencies {
  signedIn: Middleware;
  steps: SignInSteps;
  form: Middleware;
  /** The factor named in the path, when this sign-in offers it, with its page kind and host. */
  offeredFactor: (ctx: Context, state: SignInState) => Promise<{ module: FactorModule; page: SignInPage; host: PageHost }>;
  /** Every module (a challenge may be cancelled whichever is offered now). */
  modules: ReadonlyMap<FactorId, FactorModule>;
  /** Wakes a waiting status request when its challenge is answered (on any node). */
  signals: Signals;
}

const csrfField = z.string().max(200);
const answerForm = z.object({ _csrf: csrfField, remember: z.literal('yes').optional(), remember_asked: z.literal('yes').optional() });
const plainForm = z.object({ _csrf: csrfField });
// Any id is checked against the factors this sign-in may use; an unknown one is not found.
const factorParam = z.string().regex(/^[a-z][a-z0-9-]{0,39}$/);

/** A started challenge of any factor: its page, its status, an answer, a resend, a cancel. */
export function challengeRoutes(router: Router, deps: ChallengeRouteDependencies) {
  const { signedIn, steps, form, offeredFactor } = deps;

  router.get('/mfa/:factor/challenge/:challengeId', signedIn, async (ctx) => {
    const state = signInState(ctx);
    const { module, page, host } = await offeredFactor(ctx, state);
    const { challengeId } = ctx.params;
    if (page.arrive) return respond(ctx, steps, state, module, await page.arrive(host, challengeId));
    const status = module.status ? await module.status(state.challengeCtx, challengeId) : { status: 'pending' as const };
    if (status.status === 'verified' && factorStrength(state.verified) >= 2) return steps.finish(ctx, state, module.id);
    // After "Resend code" (which redirects here with ?resent=1), say that a new code is on its way.
    const notice = ctx.query.resent === '1' ? state.t('mfa.resent') : undefined;
    await respond(ctx, steps, state, module, await page.challenge(host, challengeId, { notice }));
  });

  router.get('/mfa/:factor/challenge/:challengeId/status', signedIn, async (ctx) => {
    const state = signInState(ctx);
    const { module, page, host } = await offeredFactor(ctx, state);
    ctx.set('Cache-Control', 'no-store');
    const { challengeId } = ctx.params;
    const read = async (): Promise<{ status: string }> => {
      if (page.pollStatus) return page.pollStatus(host, challengeId);
      const status = module.status ? await module.status(state.challengeCtx, challengeId) : { status: 'pending' as const };
      return { status: status.status === 'verified' ? 'verified' : 'pending' };
    };
    const endsIn = (body: { status: string }) => ('expiresIn' in body && typeof body.expiresIn === 'number' ? body.expiresIn : undefined);
    ctx.body = await statusWhenChanged(ctx, deps.signals, challengeId, read, (body) => body.status === 'pending', endsIn);
  });

  /** The user left a waiting page or chose another method (`navigator.sendBeacon`). */
  router.post(['/mfa/:factor/challenge/:challengeId/cancel', '/mfa/enrol/:factor/challenge/:challengeId/cancel'], form, signedIn, async (ctx) => {
    const state = signInState(ctx);
    const input = readForm(ctx, plainForm);
    assertCsrf(ctx, input._csrf);
    const parsed = factorParam.safeParse(ctx.params.factor);
    const module = parsed.success ? deps.modules.get(parsed.data) : undefined;
    if (!module?.cancel) throw new NyckelError('not_found');
    await module.cancel(state.challengeCtx, ctx.params.challengeId);
    ctx.status = 204;
  });

  router.post('/mfa/:factor/challenge/:challengeId/verify', form, signedIn, async (ctx) => {
    const state = signInState(ctx);
    const input = readForm(ctx, answerForm);
    assertCsrf(ctx, input._csrf);
    const { module, page, host } = await offeredFactor(ctx, state);
    const { challengeId } = ctx.params;
    // No start page before it (or none was shown): "don't ask again" is chosen on the page that answers.
    if (page.rememberWithAnswer || input.remember_asked) steps.rememberChoice(ctx, state, input.remember ?? 'no');
    const answer = page.readAnswer(ctx.request.body, false);
    if ('invalid' in answer)
      return respond(ctx, steps, state, module, await page.challenge(host, challengeId, { error: state.t(answer.invalid), status: 400 }));
    const outcome = await module.verify(state.challengeCtx, { challengeId, ...answer });
    if (outcome.status === 'verified') return steps.afterVerified(ctx, state, module, outcome);
    if (outcome.status === 'pending') return respond(ctx, steps, state, module, await page.challenge(host, challengeId));
    await steps.recordFailure(ctx, state, module, outcome);
    const shown = host.failure('answer', outcome, true);
    await respond(ctx, steps, state, module, await page.challenge(host, challengeId, { error: shown.message, status: shown.status }));
  });

  router.post('/mfa/:factor/challenge/:challengeId/resend', form, signedIn, async (ctx) => {
    const state = signInState(ctx);
    const input = readForm(ctx, plainForm);
    assertCsrf(ctx, input._csrf);
    const { module, page, host } = await offeredFactor(ctx, state);
    const outcome = await module.start(state.challengeCtx, { resendOf: ctx.params.challengeId });
    if (outcome.status === 'failed') {
      const shown = host.failure('send', outcome, true);
      return respond(ctx, steps, state, module, await page.challenge(host, ctx.params.challengeId, { error: shown.message, status: shown.status }));
    }
    steps.redirect(ctx, `${host.factorPath}/challenge/${outcome.challengeId}?resent=1`);
  });
}
