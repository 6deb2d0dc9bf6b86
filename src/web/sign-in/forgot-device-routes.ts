import type Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { z } from 'zod';
import type { AccountNotifier } from '../../accounts/notify.ts';
import type { AuditLog } from '../../accounts/audit.ts';
import { NyckelError } from '../../errors.ts';
import type { FactorModule } from '../../factors/contract.ts';
import type { SecondFactorPolicy } from '../../factors/policy.ts';
import type { ChallengeStore } from '../../factors/shared/challenges.ts';
import { assertCsrf } from '../../security/csrf.ts';
import { readForm } from '../shared/forms.ts';
import { signInState, type SignInState } from './sign-in-state.ts';
import type { SignInSteps } from './sign-in-steps.ts';

export interface ForgotDeviceDependencies {
  signedIn: Middleware;
  steps: SignInSteps;
  policy: SecondFactorPolicy;
  challenges: ChallengeStore;
  audit: AuditLog;
  notifier?: AccountNotifier;
  form: Middleware;
}

const csrfField = z.string().max(200);
const startForm = z.object({ _csrf: csrfField, target: z.string().max(100).default('') });
const codeForm = z.object({ _csrf: csrfField, code: z.string().max(64).default('') });

/**
 * "Forgot your device?" (TDC): when the client allows it (`forgot_device_email`), a code to one of the
 * user's verified addresses stands in for the client's methods. The login says so (acr
 * `urn:nyckel:acr:mfa-fallback`, which no step-up accepts), is audited and mailed to the user, and
 * the user is asked to set up a new method on the account pages.
 */
export function forgotDeviceRoutes(router: Router, deps: ForgotDeviceDependencies) {
  const { steps, signedIn, form } = deps;
  const path = (state: SignInState) => `/interaction/${state.details.uid}/mfa/forgot`;

  /** The sign-in, when its client allows the fallback, and the module that sends the code. */
  function allowed(ctx: Context): { state: SignInState; email: FactorModule } {
    const state = signInState(ctx);
    const email = deps.policy.forgotDeviceFallback(state.challengeCtx.clientId, state.details.params);
    if (!email) throw new NyckelError('not_found');
    return { state, email };
  }

  async function renderChoice(ctx: Context, state: SignInState, email: FactorModule, error?: string, status = 200) {
    const model = { ...state.frame, targets: await email.targets(state.user), action: `${path(state)}/start`, error };
    steps.render(ctx, state, { template: 'mfa-forgot', model, status });
  }

  async function renderCode(ctx: Context, state: SignInState, email: FactorModule, challengeId: string, error?: string, status = 200) {
    const challenge = await deps.challenges.find(state.challengeCtx, challengeId, [email.id]);
    if (!challenge) throw new NyckelError('session_expired');
    const model = {
      ...state.frame,
      factor: email.id,
      title: state.t('forgot.title'),
      challengePath: `${path(state)}/challenge/${challengeId}`,
      maskedTarget: challenge.target ? email.maskTarget(challenge.target) : undefined,
      minutes: Math.max(1, Math.round((challenge.expiresAt.getTime() - challenge.createdAt.getTime()) / 60000)),
      otherMethods: true,
      forgotDevice: false,
      error,
    };
    steps.render(ctx, state, { template: 'mfa-code', model, status });
  }

  router.get('/mfa/forgot', signedIn, async (ctx) => {
    const { state, email } = allowed(ctx);
    await renderChoice(ctx, state, email);
  });

  router.post('/mfa/forgot/start', form, signedIn, async (ctx) => {
    const { state, email } = allowed(ctx);
    const input = readForm(ctx, startForm);
    assertCsrf(ctx, input._csrf);
    const outcome = await email.start(state.challengeCtx, { targetId: input.target });
    if (outcome.status === 'failed') {
      const shown = steps.failure(ctx, state, 'send', outcome, email);
      return renderChoice(ctx, state, email, shown.message, shown.status);
    }
    steps.redirect(ctx, `${path(state)}/challenge/${outcome.challengeId}`);
  });

  router.get('/mfa/forgot/challenge/:challengeId', signedIn, async (ctx) => {
    const { state, email } = allowed(ctx);
    await renderCode(ctx, state, email, ctx.params.challengeId);
  });

  router.post('/mfa/forgot/challenge/:challengeId/verify', form, signedIn, async (ctx) => {
    const { state, email } = allowed(ctx);
    const input = readForm(ctx, codeForm);
    assertCsrf(ctx, input._csrf);
    const code = input.code.replace(/\s+/g, '');
    const { challengeId } = ctx.params;
    if (!/^\d{4,10}$/.test(code)) return renderCode(ctx, state, email, challengeId, state.t('factor_errors.format'), 400);
    const outcome = await email.verify(state.challengeCtx, { challengeId, code });
    const request = { ip: ctx.ip, userAgent: ctx.get('user-agent') };
    if (outcome.status === 'failed') {
      await deps.audit.record('factor.failed', { userId: state.user.id, data: { factor: 'forgot-device', reason: outcome.reason }, ...request });
      const shown = steps.failure(ctx, state, 'answer', outcome, email);
      return renderCode(ctx, state, email, challengeId, shown.message, shown.status);
    }
    if (outcome.status !== 'verified') return renderCode(ctx, state, email, challengeId);
    await deps.audit.record('factor.fallback_used', { userId: state.user.id, data: { client: state.challengeCtx.clientId }, ...request });
    await deps.notifier?.notify(state.user, state.frame.locale, 'forgot_device_used', { client: state.frame.clientName });
    // The notice page asks the user to set up a new method, then continues the sign-in.
    const notice = { key: 'forgot.signed_in', values: { client: state.frame.clientName } };
    return steps.afterVerified(ctx, state, email, { ...outcome, notice }, { fallback: true });
  });
}
