import { accountName } from '../../accounts/accounts.ts';
import type Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { z } from 'zod';
import type { AuditLog } from '../../accounts/audit.ts';
import { NyckelError } from '../../errors.ts';
import type { FactorModule, VerifyOutcome } from '../../factors/contract.ts';
import type { FactorEngine } from '../../factors/engine.ts';
import type { SecondFactorPolicy } from '../../factors/policy.ts';
import type { FactorUi, PageHost } from '../../factors/ui-contract.ts';
import { assertCsrf } from '../../security/csrf.ts';
import { readForm, routeParam } from '../shared/forms.ts';
import { respond } from './respond.ts';
import { signInState, type SignInState } from './sign-in-state.ts';
import type { SignInSteps } from './sign-in-steps.ts';

export interface EnrolRouteDependencies {
  signedIn: Middleware;
  steps: SignInSteps;
  policy: SecondFactorPolicy;
  engine: Pick<FactorEngine, 'makePrimary'>;
  audit: AuditLog;
  form: Middleware;
  uiOf(module: FactorModule): FactorUi;
  hostFor(ctx: Context, state: SignInState, module: FactorModule, enrolling: boolean): PageHost;
  /** The service's name, in the heading of the recovery codes' file. */
  service: string;
}

const csrfField = z.string().max(200);
const startForm = z.object({
  _csrf: csrfField,
  target: z.string().max(100).optional(),
  typed: z.string().max(320).optional(),
  remember: z.literal('yes').optional(),
  label: z.string().max(60).optional(),
});
/** Completing an enrolment: the answer (read by the factor's page), and the name the user gives it ("My phone"). */
const completeForm = z.object({ _csrf: csrfField, label: z.string().max(60).optional(), remember: z.literal('yes').optional() });

/** Enrolment during sign-in, for a user with no usable method (when the client allows it). */
export function enrolRoutes(router: Router, deps: EnrolRouteDependencies) {
  const { policy, steps, signedIn, form } = deps;

  async function enrollable(ctx: Context, state: SignInState) {
    const module = (await policy.enrollableAtSignIn(state.user, state.challengeCtx.clientId, state)).find((m) => m.id === routeParam(ctx, 'factor'));
    if (!module) throw new NyckelError('not_found');
    return { module, page: deps.uiOf(module).page, host: deps.hostFor(ctx, state, module, true) };
  }

  router.get('/mfa/enrol', signedIn, async (ctx) => {
    const state = signInState(ctx);
    if (!policy.enrolmentAtSignInAllowed(state.challengeCtx.clientId)) throw new NyckelError('not_found');
    const modules = await policy.enrollableAtSignIn(state.user, state.challengeCtx.clientId, state);
    const options = await Promise.all(
      modules.map(async (m) => ({
        id: m.id,
        atTarget: deps.uiOf(m).page.enrolsAtTarget,
        name: state.t(`factors.${m.id}.name`),
        targets: await m.enrol.targets(state.user),
      })),
    );
    steps.render(ctx, state, { template: 'mfa-enrol', model: { ...state.frame, options } });
  });

  router.post('/mfa/enrol/:factor/start', form, signedIn, async (ctx) => {
    const state = signInState(ctx);
    const input = readForm(ctx, startForm);
    assertCsrf(ctx, input._csrf);
    const { module, page, host } = await enrollable(ctx, state);
    await respond(ctx, steps, state, module, await page.beginEnrolment(host, { targetId: input.target, label: input.label }));
  });

  router.get('/mfa/enrol/:factor/challenge/:challengeId', signedIn, async (ctx) => {
    const state = signInState(ctx);
    const { module, page, host } = await enrollable(ctx, state);
    await respond(ctx, steps, state, module, await page.challenge(host, ctx.params.challengeId));
  });

  router.get('/mfa/enrol/:factor/challenge/:challengeId/status', signedIn, async (ctx) => {
    const state = signInState(ctx);
    const { page, host } = await enrollable(ctx, state);
    if (!page.pollStatus) throw new NyckelError('not_found');
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await page.pollStatus(host, ctx.params.challengeId);
  });

  router.post('/mfa/enrol/:factor/challenge/:challengeId/verify', form, signedIn, async (ctx) => {
    const state = signInState(ctx);
    const input = readForm(ctx, completeForm);
    assertCsrf(ctx, input._csrf);
    const { module, page, host } = await enrollable(ctx, state);
    const { challengeId } = ctx.params;
    const answer = page.readAnswer(ctx.request.body, true);
    if ('invalid' in answer)
      return respond(ctx, steps, state, module, await page.challenge(host, challengeId, { error: state.t(answer.invalid), status: 400, label: input.label }));
    const outcome = await module.enrol.complete(state.challengeCtx, {
      challengeId,
      code: 'code' in answer ? answer.code : '',
      credential: 'credential' in answer ? answer.credential : undefined,
      label: input.label,
    });
    if (outcome.status === 'verified') return enrolled(ctx, state, module, outcome);
    await respond(ctx, steps, state, module, await page.enrolmentNotVerified(host, challengeId, outcome, { label: input.label }));
  });

  /** A method enrolled: made primary, recovery codes when the policy gives them, and the sign-in continues. */
  async function enrolled(ctx: Context, state: SignInState, module: FactorModule, outcome: Extract<VerifyOutcome, { status: 'verified' }>) {
    const request = { ip: ctx.ip, userAgent: ctx.get('user-agent') };
    await deps.audit.record('factor.enrolled', { userId: state.user.id, data: { factor: module.id }, ...request });
    await deps.engine.makePrimary(state.user.id, module.id);
    const codes = await policy.recoveryCodesOnEnrolment(state.challengeCtx.clientId, module)?.ensure(state.user.id);
    if (!codes) return steps.afterVerified(ctx, state, module, outcome);
    await deps.audit.record('recovery-codes.generated', { userId: state.user.id, data: { count: codes.length }, ...request });
    // Recorded now; the page of codes continues the sign-in (POST /mfa/continue) on a click.
    await steps.recordVerified(ctx, state, module, outcome);
    const text = `${state.t('recovery.file_heading', { user: accountName(state.user), service: deps.service })}\n\n${codes.join('\n')}\n`;
    steps.render(ctx, state, {
      template: 'mfa-recovery-codes',
      model: { ...state.frame, codes, download: `data:text/plain;charset=utf-8,${encodeURIComponent(text)}` },
    });
  }
}
