import type { Context } from 'koa';
import type { AuditLog } from '../../accounts/audit.ts';
import type { FactorModule, VerifyOutcome } from '../../factors/contract.ts';
import type { FailureReason } from '../../factors/contract.ts';
import { factorStrength, type SignIns, type VerifiedFactor } from '../../factors/sign-ins.ts';
import type { FactorUi, FailureShown, FailureStep, View } from '../../factors/ui-contract.ts';
import { hasMessage } from '../../i18n/i18n.ts';
import type { Metrics } from '../../observability/metrics.ts';
import type { PageRenderer } from '../../server/pages.ts';
import { failureResponse } from '../shared/outcome-view.ts';
import type { SignInFlow } from './sign-in-flow.ts';
import type { SignInState } from './sign-in-state.ts';

type VerifiedOutcome = Extract<VerifyOutcome, { status: 'verified' }>;
type FailedOutcome = Extract<VerifyOutcome, { status: 'failed' }>;

const REMEMBER_CHOICE = 'nyckel.remember-choice';

export interface SignInStepsDependencies {
  signIns: SignIns;
  flow: SignInFlow;
  audit: AuditLog;
  metrics: Metrics;
  pages: PageRenderer;
  uis: ReadonlyMap<string, FactorUi>;
}

/**
 * What every second-step route does with an answer: record it for the sign-in's user (or the
 * failure), show a page, and continue to SignInFlow.finish once the factors are there.
 */
export class SignInSteps {
  constructor(private readonly deps: SignInStepsDependencies) {}

  render(ctx: Context, state: SignInState, view: View) {
    this.deps.pages.html(ctx, view.template, state.frame.locale, view.model as Record<string, unknown>, view.status ?? 200);
  }

  /** A failure in the page's words, its status, and Retry-After set; `module` names it in its own words. */
  failure(
    ctx: Context,
    state: SignInState,
    step: FailureStep,
    failure: { reason: FailureReason; retryAfterSeconds?: number; attemptsLeft?: number },
    module?: FactorModule,
  ): FailureShown {
    const ui = module ? this.deps.uis.get(module.id) : undefined;
    const source = module ? { id: module.id, readsCode: ui?.failures.readsCode } : undefined;
    const { message, status } = failureResponse(ctx, state.frame.locale, step, failure, source);
    return { message, status };
  }

  redirect(ctx: Context, to: string) {
    ctx.status = 303;
    ctx.redirect(to);
  }

  /** "Don't ask again", chosen on a start page or with the answer; kept for a page that continues later. */
  rememberChoice(ctx: Context, state: SignInState, choice: string) {
    ctx.state.rememberChoice = choice;
    ctx.cookies.set(REMEMBER_CHOICE, choice, { httpOnly: true, sameSite: 'lax', path: `/interaction/${state.details.uid}` });
  }

  /** Whether "don't ask again" was answered earlier in this sign-in (a start page before the code page). */
  rememberAnswered(ctx: Context): boolean {
    return ctx.state.rememberChoice !== undefined || ctx.cookies.get(REMEMBER_CHOICE) !== undefined;
  }

  /** Finishes the login if the sign-in's factors satisfy the policy (SignInFlow.finish), else back to the methods. */
  async finish(ctx: Context, state: SignInState, method: string) {
    const rememberChoice = (ctx.state.rememberChoice as string | undefined) ?? ctx.cookies.get(REMEMBER_CHOICE);
    const result = await this.deps.flow.finish(ctx, state.details, {
      user: state.user,
      method,
      rememberChoice,
      afterReset: state.pendingPassword,
      locale: state.challengeCtx.locale,
      recorded: state.recorded,
    });
    ctx.cookies.set(REMEMBER_CHOICE, null, { path: `/interaction/${state.details.uid}` });
    if (result === 'unsatisfied') this.redirect(ctx, `/interaction/${state.details.uid}/mfa`);
  }

  /** Finish when the sign-in has its two factors, else back to the methods. */
  async continueOrChoose(ctx: Context, state: SignInState, method: string) {
    if (factorStrength(state.verified) >= 2) return this.finish(ctx, state, method);
    this.redirect(ctx, `/interaction/${state.details.uid}/mfa`);
  }

  /** Audits and counts a wrong (or refused) answer to a factor during sign-in. */
  async recordFailure(ctx: Context, state: SignInState, module: FactorModule, outcome: FailedOutcome) {
    this.deps.metrics.login(outcome.reason === 'locked' || outcome.reason === 'rate_limited' ? outcome.reason : 'factor_failed', module.id);
    await this.deps.audit.record('factor.failed', {
      userId: state.user.id,
      data: { factor: module.id, reason: outcome.reason },
      ip: ctx.ip,
      userAgent: ctx.get('user-agent'),
    });
  }

  /**
   * Audits and records a verified factor for the user it was verified for; true when the sign-in now
   * has two independent factors. A repeated answer (a double submit) records nothing new.
   */
  async recordVerified(
    ctx: Context,
    state: SignInState,
    module: FactorModule,
    outcome: VerifiedOutcome,
    options: { fallback?: boolean } = {},
  ): Promise<boolean> {
    if (!outcome.repeated) {
      await this.deps.audit.record('factor.verified', {
        userId: state.user.id,
        data: { factor: module.id, ...options },
        ip: ctx.ip,
        userAgent: ctx.get('user-agent'),
      });
    }
    const factor: VerifiedFactor = {
      factor: module.id,
      channel: module.channel,
      amr: [...outcome.amr],
      at: new Date().toISOString(),
      userId: state.user.id,
      ...(options.fallback ? { fallback: true } : {}),
    };
    const recorded = await this.deps.signIns.record(state.details.uid, factor);
    state.verified = recorded.verified;
    state.recorded = recorded.snapshot;
    return factorStrength(state.verified) >= 2;
  }

  /** Records a verified factor, then tells the notice (if any) or continues the sign-in. */
  async afterVerified(ctx: Context, state: SignInState, module: FactorModule, outcome: VerifiedOutcome, options: { fallback?: boolean } = {}) {
    const satisfied = await this.recordVerified(ctx, state, module, outcome, options);
    const { notice } = outcome;
    // Something to tell first (e.g. how many recovery codes are left): a page that continues on a click.
    if (satisfied && notice) {
      const { t, frame } = state;
      const link = hasMessage(frame.locale, `${notice.key}_link`) ? { href: '/account', text: t(`${notice.key}_link`) } : undefined;
      return this.render(ctx, state, {
        template: 'mfa-notice',
        model: { ...frame, title: t(`${notice.key}_title`), message: t(notice.key, notice.values), link },
      });
    }
    if (satisfied) return this.finish(ctx, state, module.id);
    this.redirect(ctx, `/interaction/${state.details.uid}/mfa`);
  }
}
