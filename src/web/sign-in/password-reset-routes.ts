import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { z } from 'zod';
import type { Accounts } from '../../accounts/accounts.ts';
import type { AuditLog } from '../../accounts/audit.ts';
import { checkPassword } from '../../accounts/password-policy.ts';
import type { ClientDirectory } from '../../clients/directory.ts';
import { NyckelError } from '../../errors.ts';
import type { StartOutcome, VerifyOutcome } from '../../factors/contract.ts';
import type { SecondFactorPolicy } from '../../factors/policy.ts';
import { passwordFactor, type SignIns } from '../../factors/sign-ins.ts';
import type { ChallengeStore } from '../../factors/shared/challenges.ts';
import { translator, type Translate } from '../../i18n/i18n.ts';
import { assertCsrf, csrfProtection, csrfSeed } from '../../security/csrf.ts';
import type { SecretBox } from '../../security/crypto.ts';
import type { PageRenderer } from '../../server/pages.ts';
import { formBody, readForm } from '../shared/forms.ts';
import { renderUnavailable } from './unavailable.ts';
import { frameOf, loadInteraction, signInNamesOf } from './login-routes.ts';
import { PasswordResets, type PasswordResetDependencies, type ResetRequest } from './password-reset.ts';
import type { SignInFlow } from './sign-in-flow.ts';

export interface PasswordResetRouteDependencies extends Omit<PasswordResetDependencies, 'challenges'> {
  provider: () => Provider;
  accounts: Accounts;
  audit: AuditLog;
  clients: ClientDirectory;
  pages: PageRenderer;
  box: SecretBox;
  challenges: ChallengeStore;
  policy: SecondFactorPolicy;
  signIns: SignIns;
  flow: SignInFlow;
  maxBodyBytes: number;
  signInNames: Parameters<typeof signInNamesOf>[0]['signInNames'];
}

const csrfField = z.string().max(200);
const nameForm = z.object({ _csrf: csrfField, name: z.string().max(320).default('') });
const codeForm = z.object({ _csrf: csrfField, challenge: z.string().max(64).default(''), code: z.string().max(64).default('') });
const newPasswordForm = z.object({
  _csrf: csrfField,
  challenge: z.string().max(64).default(''),
  password: z.string().max(4096).default(''),
  confirm: z.string().max(4096).default(''),
});

/**
 * "Forgot your password?" inside a sign-in: a name, a code by mail, a new password. The new password
 * is kept with the sign-in and set by SignInFlow.finish when the sign-in ends, so a user with a second
 * factor passes it first (SecondFactorPolicy.afterPasswordReset); the sign-in then goes on as usual.
 */
export function passwordResetRoutes(deps: PasswordResetRouteDependencies): Router {
  const router = new Router({ prefix: '/interaction/:uid/forgot-password' });
  const form = formBody(deps.maxBodyBytes);
  const resets = new PasswordResets(deps);
  router.use(csrfProtection(deps.box));

  /** The interaction, still at its password step (a reset is part of the first step). */
  async function interaction(ctx: Context) {
    const details = await loadInteraction(deps, ctx);
    if (details.prompt.name !== 'login') throw new NyckelError('session_expired');
    const frame = frameOf(deps.pages, ctx, details);
    const request: ResetRequest = {
      uid: details.uid,
      clientId: String(details.params.client_id),
      clientName: frame.clientName,
      locale: frame.locale,
      ip: ctx.ip,
      userAgent: ctx.get('user-agent'),
      browserHash: deps.challenges.browserHash(csrfSeed(ctx)),
    };
    return { details, frame, request, t: translator(frame.locale) };
  }
  type Step = Awaited<ReturnType<typeof interaction>>;

  function render(ctx: Context, step: Step, template: string, model: Record<string, unknown>, status = 200) {
    deps.pages.html(ctx, template, step.frame.locale, { ...step.frame, ...model }, status);
  }

  function renderName(ctx: Context, step: Step, options: { name?: string; error?: string; status?: number } = {}) {
    const nameLabel = step.t(`login.name_label.${signInNamesOf(deps, step.details)}`);
    render(ctx, step, 'password-forgot', { name: options.name ?? '', nameLabel, error: options.error }, options.status);
  }

  function renderCode(ctx: Context, step: Step, challengeId: string, name: string, error?: { text: string; status: number }) {
    const model = { challengeId, name, minutes: Math.round(deps.ttlSeconds / 60), error: error?.text };
    render(ctx, step, 'password-reset-code', model, error?.status);
  }

  router.get('/', async (ctx) => {
    const step = await interaction(ctx);
    renderName(ctx, step, { name: typeof step.details.params.login_hint === 'string' ? step.details.params.login_hint : '' });
  });

  router.post('/', form, async (ctx) => {
    const step = await interaction(ctx);
    const input = readForm(ctx, nameForm);
    assertCsrf(ctx, input._csrf);
    const name = input.name.trim();
    if (!name) return renderName(ctx, step, { error: step.t('password_reset.name_missing'), status: 400 });
    const sent = await resets.send(step.request, name, signInNamesOf(deps, step.details));
    if (sent.status !== 'started') return renderName(ctx, step, { name, ...refusal(ctx, step.t, sent) });
    renderCode(ctx, step, sent.challengeId, name);
  });

  router.post('/code', form, async (ctx) => {
    const step = await interaction(ctx);
    const input = readForm(ctx, codeForm);
    assertCsrf(ctx, input._csrf);
    const outcome = await resets.verify(step.request, input.challenge, input.code.trim());
    if (outcome.status === 'verified') return render(ctx, step, 'password-new', { challengeId: input.challenge });
    const name = await resets.nameOf(step.request, input.challenge);
    if (!name) return renderName(ctx, step, { error: step.t('password_reset.code_expired'), status: 400 });
    const { error, status } = codeRefusal(ctx, step.t, outcome);
    renderCode(ctx, step, input.challenge, name, { text: error, status });
  });

  router.post('/new', form, async (ctx) => {
    const step = await interaction(ctx);
    const input = readForm(ctx, newPasswordForm);
    assertCsrf(ctx, input._csrf);
    const userId = await resets.verifiedUser(step.request, input.challenge);
    const user = userId ? await deps.accounts.findById(userId) : null;
    if (!user || user.status !== 'active') return renderName(ctx, step, { error: step.t('password_reset.code_expired'), status: 400 });
    const again = (text: string) => render(ctx, step, 'password-new', { challengeId: input.challenge, error: text }, 400);
    if (input.password !== input.confirm) return again(step.t('account.password_mismatch'));
    const problem = checkPassword(input.password, { email: user.email ?? undefined, username: user.username ?? undefined });
    if (problem) return again(step.t(`account.password_problem.${problem}`));
    const passwordHash = await deps.accounts.hashPassword(input.password);
    // Of parallel submits exactly one chooses the password; the others find the code spent.
    if ((await resets.claim(step.request, input.challenge)) !== user.id)
      return renderName(ctx, step, { error: step.t('password_reset.code_expired'), status: 400 });
    await deps.flow.begin(step.details, passwordFactor(user.id));
    await deps.signIns.setPendingPassword(step.details.uid, user.id, passwordHash);
    return continueAfterReset(ctx, step, user);
  });

  async function continueAfterReset(ctx: Context, step: Step, user: NonNullable<Awaited<ReturnType<Accounts['findById']>>>) {
    const next = await deps.policy.afterPasswordReset(user, step.request.clientId, step.details.params);
    if (next.next === 'unavailable') {
      return renderUnavailable(deps, ctx, step.frame, step.request.clientId);
    }
    if (next.next === 'finish') {
      const result = await deps.flow.finish(ctx, step.details, { user, method: 'password', afterReset: true, locale: step.frame.locale });
      if (result === 'finished') return;
    }
    ctx.status = 303;
    ctx.redirect(`/interaction/${step.details.uid}/mfa`);
  }

  return router;
}

/** A send refused by the cooldown or a budget: the words, 429 and Retry-After. */
function refusal(ctx: Context, t: Translate, sent: Exclude<StartOutcome, { status: 'started' }>) {
  const seconds = 'retryAfterSeconds' in sent && sent.retryAfterSeconds ? sent.retryAfterSeconds : 60;
  ctx.set('Retry-After', String(seconds));
  return { error: t('errors.rate_limited', { minutes: Math.ceil(seconds / 60) }), status: 429 };
}

function codeRefusal(ctx: Context, t: Translate, outcome: Exclude<VerifyOutcome, { status: 'verified' }>) {
  if (outcome.status === 'failed' && (outcome.reason === 'locked' || outcome.reason === 'rate_limited')) {
    const seconds = outcome.retryAfterSeconds ?? 60;
    ctx.set('Retry-After', String(seconds));
    return { error: t('errors.rate_limited', { minutes: Math.ceil(seconds / 60) }), status: 429 };
  }
  if (outcome.status === 'failed' && outcome.reason === 'wrong_code') return { error: t('password_reset.code_wrong'), status: 400 };
  return { error: t('password_reset.code_expired'), status: 400 };
}
