import { NyckelError } from '../../errors.ts';
import type { StartOutcome } from '../../factors/contract.ts';
import { isSendRefusal } from './outcome-view.ts';

type Failed = Pick<Extract<StartOutcome, { status: 'failed' }>, 'reason' | 'retryAfterSeconds'>;

/** For a page with nowhere to show the refusal: the error page's 429 with the time to wait. */
export function sendRefusedError(outcome: Failed): NyckelError | undefined {
  return isSendRefusal(outcome) ? new NyckelError('rate_limited', undefined, { retryAfterSeconds: outcome.retryAfterSeconds }) : undefined;
}
