import type { Context } from 'koa';
import { NyckelError } from '../../errors.ts';
import type { StartOutcome } from '../../factors/contract.ts';

type Failed = Extract<StartOutcome, { status: 'failed' }>;

/** Whether a start was refused by the send cooldown or a sending budget (src/factors/shared/send-guard.ts). */
export const isSendRefusal = (outcome: Failed) => outcome.reason === 'cooldown' || outcome.reason === 'rate_limited';

/** The HTTP status of a failed start: 429 with Retry-After for a send refused by the cooldown or a budget, 400 otherwise. */
export function sendRefusalStatus(ctx: Context, outcome: Failed): number {
  if (!isSendRefusal(outcome)) return 400;
  if (outcome.retryAfterSeconds) ctx.set('Retry-After', String(outcome.retryAfterSeconds));
  return 429;
}

/** For a page with nowhere to show the refusal: the error page's 429 with the time to wait. */
export function sendRefusedError(outcome: Failed): NyckelError | undefined {
  return isSendRefusal(outcome) ? new NyckelError('rate_limited', undefined, { retryAfterSeconds: outcome.retryAfterSeconds }) : undefined;
}
