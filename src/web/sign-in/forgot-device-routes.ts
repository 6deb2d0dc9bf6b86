import type Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { z } from 'zod';
import type { AccountNotifier } from '../../account/notify.ts';
import type { AuditLog } from '../../accounts/audit.ts';
import { NyckelError } from '../../errors.ts';
import type { ChallengeContext, FactorModule, VerifyOutcome } from '../../factors/contract.ts';
import type { FactorEngine } from '../../factors/engine.ts';
import type { ChallengeStore } from '../../factors/shared/challenges.ts';
import type { User } from '../../generated/prisma/client.ts';
import { translator } from '../../i18n/i18n.ts';
import { assertCsrf } from '../../security/csrf.ts';
import { readForm } from '../shared/forms.ts';
import type { PageRenderer } from '../../server/pages.ts';
import { sendRefusalStatus } from '../shared/send-refusal.ts';

/** What the second-step routes share with this fallback (see factor-routes.ts). */
export interface SecondStep<State extends { user: User; ctx: ChallengeContext; details: { uid: string } }> {
  signIn(ctx: Context): Promise<State>;
  base(ctx: Context, state: State): Record<string, unknown>;
  failureMessage(state: State, outcome: Extract<VerifyOutcome, { status: 'failed' }>, module?: FactorModule): string;
  afterVerified(ctx: Context, state: State, module: FactorModule, outcome: Extract<VerifyOutcome, { status: 'verified' }>, options?: { fallback?: boolean }): Promise<unknown>;
}

export interface ForgotDeviceDependencies {
  engine: FactorEngine;
  challenges: ChallengeStore;
  pages: PageRenderer;
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
export function forgotDeviceRoutes<State extends { user: User; ctx: ChallengeContext; details: { uid: string } }>(router: Router, step: SecondStep<State>, deps: ForgotDeviceDependencies) {
  const { engine, pages } = deps;
  const path = (state: State) => `/interaction/${state.details.uid}/mfa/forgot`;

  /** The sign-in, when its client allows the fallback, and the email-code module that sends the code. */
  async function allowed(ctx: Context): Promise<{ state: State; email: FactorModule }> {
    const state = await step.signIn(ctx);
    const email = engine.modules.get('email-code');
    if (!engine.policy(state.ctx.clientId).forgotDeviceEmail || !email) throw new NyckelError('not_found');
    return { state, email };
  }

  async function renderChoice(ctx: Context, state: State, email: FactorModule, error?: string, status = 200) {
    pages.html(ctx, 'mfa-forgot', state.ctx.locale, { ...step.base(ctx, state), targets: await email.targets(state.user), action: `${path(state)}/start`, error }, status);
  }

  async function renderCode(ctx: Context, state: State, challengeId: string, error?: string, status = 200) {
    const challenge = await deps.challenges.find(state.ctx, challengeId, ['email-code']);
    if (!challenge) throw new NyckelError('session_expired');
    const t = translator(state.ctx.locale);
    pages.html(
      ctx,
      'mfa-code',
      state.ctx.locale,
      {
        ...step.base(ctx, state),
        factor: 'email-code',
        title: t('forgot.title'),
        challengePath: `${path(state)}/challenge/${challengeId}`,
        maskedTarget: challenge.target ? engine.modules.get('email-code')!.maskTarget(challenge.target) : undefined,
        minutes: Math.max(1, Math.round((challenge.expiresAt.getTime() - challenge.createdAt.getTime()) / 60000)),
        otherMethods: true,
        forgotDevice: false,
        error,
      },
      status,
    );
  }

  router.get('/mfa/forgot', async (ctx) => {
    const { state, email } = await allowed(ctx);
    await renderChoice(ctx, state, email);
  });

  router.post('/mfa/forgot/start', deps.form, async (ctx) => {
    const { state, email } = await allowed(ctx);
    const input = readForm(ctx, startForm);
    assertCsrf(ctx, input._csrf);
    const outcome = await email.start(state.ctx, { targetId: input.target });
    if (outcome.status === 'failed') return renderChoice(ctx, state, email, step.failureMessage(state, outcome, email), sendRefusalStatus(ctx, outcome));
    ctx.status = 303;
    ctx.redirect(`${path(state)}/challenge/${outcome.challengeId}`);
  });

  router.get('/mfa/forgot/challenge/:challengeId', async (ctx) => {
    const { state } = await allowed(ctx);
    await renderCode(ctx, state, ctx.params.challengeId);
  });

  router.post('/mfa/forgot/challenge/:challengeId/verify', deps.form, async (ctx) => {
    const { state, email } = await allowed(ctx);
    const input = readForm(ctx, codeForm);
    assertCsrf(ctx, input._csrf);
    const code = input.code.replace(/\s+/g, '');
    const t = translator(state.ctx.locale);
    if (!/^\d{4,10}$/.test(code)) return renderCode(ctx, state, ctx.params.challengeId, t('factor_errors.format'), 400);
    const outcome = await email.verify(state.ctx, { challengeId: ctx.params.challengeId, code });
    if (outcome.status === 'failed') {
      await deps.audit.record('factor.failed', { userId: state.user.id, data: { factor: 'forgot-device', reason: outcome.reason }, ip: ctx.ip, userAgent: ctx.get('user-agent') });
      if (outcome.reason === 'locked' && outcome.retryAfterSeconds) ctx.set('Retry-After', String(outcome.retryAfterSeconds));
      return renderCode(ctx, state, ctx.params.challengeId, step.failureMessage(state, outcome, email), outcome.reason === 'locked' ? 429 : outcome.reason === 'wrong_code' ? 401 : 400);
    }
    if (outcome.status !== 'verified') return renderCode(ctx, state, ctx.params.challengeId);
    await deps.audit.record('factor.fallback_used', { userId: state.user.id, data: { client: state.ctx.clientId }, ip: ctx.ip, userAgent: ctx.get('user-agent') });
    await deps.notifier?.notify(state.user, state.ctx.locale, 'forgot_device_used', { client: state.ctx.clientName });
    // The notice page asks the user to set up a new method, then continues the sign-in.
    return step.afterVerified(ctx, state, email, { ...outcome, notice: { key: 'forgot.signed_in', values: { client: state.ctx.clientName } } }, { fallback: true });
  });
}
