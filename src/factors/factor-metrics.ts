import type { FactorId } from '../clients/clients-file.ts';
import type { FactorModule } from './contract.ts';
import { isPasskeyModule, type PasskeyModule } from './passkey/index.ts';
import { secondsSince, type FactorVerifyOutcome, type Metrics } from '../observability/metrics.ts';

// Any module's failure reason (a FailureReason, or one of passwordless sign-in's own).
type Outcome = { status: string; reason?: string };

/**
 * The rate limit behind a refused outcome, or undefined when the outcome is no refusal. The limiters
 * themselves (failure lock, SMS guard, push cap) only answer; their refusals are counted here, where
 * every caller (sign-in, account pages, "Forgot your device?") sees them.
 */
export function limiterOf(factor: FactorId, outcome: Outcome, channel?: FactorModule['channel']): string | undefined {
  if (outcome.status !== 'failed') return undefined;
  if (outcome.reason === 'locked') return 'factor_lock';
  if (outcome.reason === 'cooldown') return 'cooldown';
  // Both email factors (and "Forgot your device?", enrolment) spend the one mail budget.
  if (outcome.reason === 'rate_limited') return channel === 'email' ? 'mail_budget' : `${factor}_budget`;
  return undefined;
}

/**
 * Replaces each module in the map with one that times `verify` (nyckel_factor_verify_seconds) and
 * counts refusals by a rate limit (nyckel_rate_limit_refusals_total) of every call. The modules
 * themselves are not changed: some share parts (the enrolment stub) with other Nyckel instances.
 */
export function instrumentFactorModules(modules: Map<FactorId, FactorModule>, metrics: Metrics): void {
  for (const [id, module] of modules) modules.set(id, instrumented(module, metrics));
}

function instrumented(module: FactorModule, metrics: Metrics): FactorModule {
  const refusals =
    <A extends unknown[], R extends Outcome>(call: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      const outcome = await call(...args);
      const limiter = limiterOf(module.id, outcome, module.channel);
      if (limiter) metrics.rateLimitRefused(limiter);
      return outcome;
    };
  const timed =
    <A extends unknown[], R extends Outcome>(call: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      const started = process.hrtime.bigint();
      let status: FactorVerifyOutcome = 'failed';
      try {
        const outcome = await call(...args);
        status = outcome.status === 'verified' || outcome.status === 'pending' ? outcome.status : 'failed';
        return outcome;
      } finally {
        metrics.factorVerified(module.id, status, secondsSince(started));
      }
    };
  // "Sign in with a passkey": the same check, without a password first.
  const passwordless: Partial<PasskeyModule> = isPasskeyModule(module)
    ? { passwordless: { ...module.passwordless, verify: timed(refusals(module.passwordless.verify.bind(module.passwordless))) } }
    : {};
  return {
    ...module,
    ...passwordless,
    start: refusals(module.start.bind(module)),
    verify: timed(refusals(module.verify.bind(module))),
    enrol: { ...module.enrol, begin: refusals(module.enrol.begin.bind(module.enrol)), complete: refusals(module.enrol.complete.bind(module.enrol)) },
  };
}
