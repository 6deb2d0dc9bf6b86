import type { Context } from 'koa';
import type { Accounts } from '../../accounts/accounts.ts';
import type { AuditLog } from '../../accounts/audit.ts';
import { NyckelError } from '../../errors.ts';
import type { FirstStepDecision, SecondFactorPolicy } from '../../factors/policy.ts';
import type { RememberedBrowsers } from '../../factors/remember.ts';
import { factorStrength, loginOutcome, passwordFactor, type SignIns, type SignInSnapshot, type VerifiedFactor } from '../../factors/sign-ins.ts';
import type { User } from '../../generated/prisma/client.ts';
import type { Locale } from '../../accounts/accounts.ts';
import type { AccountNotifier } from '../../accounts/notify.ts';
import type { Metrics } from '../../observability/metrics.ts';
import { storeResult, type InteractionDetails } from './interaction-result.ts';

export interface SignInFlowDependencies {
  /** Whether a second factor is needed, and whether a remembered browser stands in for it. */
  policy: SecondFactorPolicy;
  signIns: SignIns;
  accounts: Accounts;
  remembered: RememberedBrowsers;
  audit: AuditLog;
  /** Mails the user when a reset password is set. */
  notifier: Pick<AccountNotifier, 'notify'>;
  metrics: Pick<Metrics, 'login'>;
}

/** What happened when a sign-in was to be finished. */
export type FinishResult =
  /** Logged in: the browser is on its way back to the relying party. */
  | 'finished'
  /** The factors verified so far do not meet the policy yet: ask for the second factor. */
  | 'unsatisfied';

export interface FinishInput {
  /** The user this request's sign-in is bound to, as read in this request (`complete` checks they are still active). */
  user: User;
  /** The method that ended the sign-in (metrics, and the factor a remembered browser names). */
  method: string;
  /** "Don't ask again in this browser", as chosen on the page. */
  rememberChoice?: string;
  /** The sign-in carries a new password from "Forgot your password?" (as its state was loaded). */
  afterReset?: boolean;
  /** The pages' language (the mail about a reset is written in it). */
  locale: Locale;
  /** The record as this request last wrote it: judged first (`complete` re-checks it in its UPDATE). */
  recorded?: SignInSnapshot;
}

/** The policy's decision after the first step, and the record that step wrote (for `finish` to judge). */
type NextStep = FirstStepDecision & { recorded: SignInSnapshot };

/**
 * The start and the end of every sign-in, whichever path it takes (password, step-up in a session,
 * the second factor, "Forgot your device?", a passkey instead of the password): the first step binds
 * the sign-in to its user, and `finish` is the one place that ends an interaction with a login,
 * after checking the sign-in's factors against the policy.
 */
export class SignInFlow {
  constructor(private readonly deps: SignInFlowDependencies) {}

  /** Binds the interaction's sign-in to the user of its first step (a new, empty one if it was another user's). */
  begin(details: InteractionDetails, first: VerifiedFactor): Promise<SignInSnapshot> {
    return this.deps.signIns.begin(details.uid, String(details.params.client_id), new Date(details.exp * 1000), first);
  }

  /** After the password (or an existing session): bind the sign-in to the user, then finish or go on to the second factor. */
  async afterFirstStep(ctx: Context, details: InteractionDetails, user: User, first: VerifiedFactor = passwordFactor(user.id)): Promise<NextStep> {
    const recorded = await this.begin(details, first);
    return { ...(await this.deps.policy.afterFirstStep(ctx, user, String(details.params.client_id), details.params)), recorded };
  }

  /**
   * Ends the interaction with a login if the sign-in, still bound to `userId`, meets the policy now:
   * two independent factors where the client or the request needs a second one (or a browser the user
   * asked to be remembered, outside step-up). A sign-in already ended (a double submit) continues to
   * the relying party; one that is no longer this user's is session_expired.
   */
  async finish(ctx: Context, details: InteractionDetails, input: FinishInput): Promise<FinishResult> {
    const { policy: secondFactor, signIns, audit } = this.deps;
    const { user } = input;
    if (user.status !== 'active') throw new NyckelError('session_expired');
    const clientId = String(details.params.client_id);
    const policy = secondFactor.of(clientId);
    const { needed, stepUp } = secondFactor.needed(clientId, details.params);
    const recognised = needed && input.method === 'password' && (await secondFactor.rememberedBrowser(ctx, user, clientId, stepUp));
    const resetNeedsMore = input.afterReset === true && (await secondFactor.resetNeedsSecondFactor(user));
    const satisfied = (verified: VerifiedFactor[], pendingPassword: boolean) => {
      // A reset this request did not know of (another tab chose a new password): its own rules apply, at /mfa.
      if (pendingPassword && !input.afterReset) return false;
      if (pendingPassword && resetNeedsMore) return secondFactor.confirmsReset(verified) && factorStrength(verified) >= 2;
      return !needed || (recognised && !pendingPassword) || (factorStrength(verified) >= 2 && secondFactor.acceptsFactors(clientId, verified));
    };
    const done = await signIns.complete(details.uid, user.id, satisfied, input.recorded);
    if (!done) return this.notFinished(ctx, details, user.id, (verified) => satisfied(verified, false));
    const outcome = loginOutcome(user.id, done.verified);
    try {
      if (done.pendingPasswordHash) await this.setResetPassword(ctx, user, done.pendingPasswordHash, clientId, input.locale);
      await storeResult(ctx, details, { login: { accountId: outcome.accountId, acr: outcome.acr, amr: outcome.amr, remember: true } });
    } catch (error) {
      await signIns.reopen(details.uid, done);
      throw error;
    }
    if (input.rememberChoice === 'yes' && policy.rememberDays > 0 && factorStrength(done.verified) >= 2) {
      await this.deps.remembered.remember(ctx, user, { days: policy.rememberDays, factor: input.method });
    }
    await audit.record('login.succeeded', {
      userId: user.id,
      data: { client: clientId, amr: outcome.amr, acr: outcome.acr },
      ip: ctx.ip,
      userAgent: ctx.get('user-agent'),
    });
    this.deps.metrics.login('success', factorStrength(done.verified) >= 2 ? input.method : 'none');
    return 'finished';
  }

  /**
   * The reset of "Forgot your password?" counts now that its sign-in ends: the new password replaces the
   * old one, other sessions, relying parties' tokens and remembered browsers go, and the user is mailed.
   */
  private async setResetPassword(ctx: Context, user: User, passwordHash: string, clientId: string, locale: Locale) {
    await this.deps.accounts.setPasswordHash(user, passwordHash, { actor: 'user', ip: ctx.ip, userAgent: ctx.get('user-agent') });
    await this.deps.audit.record('user.password_reset', { userId: user.id, data: { client: clientId }, ip: ctx.ip, userAgent: ctx.get('user-agent') });
    await this.deps.notifier.notify(user, locale, 'password_reset');
  }

  /** Why `complete` refused: ended already by this user (continue), not enough factors yet, or not this user's. */
  private async notFinished(
    ctx: Context,
    details: InteractionDetails,
    userId: string,
    satisfied: (verified: VerifiedFactor[]) => boolean,
  ): Promise<FinishResult> {
    const record = await this.deps.signIns.load(details.uid);
    if (!record || record.userId !== userId || record.expiresAt <= new Date()) throw new NyckelError('session_expired');
    // Ended by this user's other request (the same answer submitted twice): its login is the interaction's result.
    if (record.completedAt) {
      ctx.status = 303;
      ctx.redirect(details.returnTo);
      return 'finished';
    }
    if (satisfied(record.verified)) throw new NyckelError('session_expired');
    return 'unsatisfied';
  }
}
