import type { Context } from 'koa';
import type { Locale } from '../../accounts/accounts.ts';
import type { FailureReason } from '../../factors/contract.ts';
import { hasMessage, translator } from '../../i18n/i18n.ts';

/** A failed answer or start, as a module reports it. */
export interface Failure {
  reason: FailureReason;
  retryAfterSeconds?: number;
  attemptsLeft?: number;
}

/** Whose words a failure is told in: a factor's own (`factor_errors.<id>_<reason>`) before the generic ones. */
export interface FailureSource {
  id: string;
  /**
   * The user reads the code from something they hold (an app, a printed list): nothing was sent, so
   * "used" and "expired" have their own words (no "send a new one").
   */
  readsCode?: boolean;
}

/**
 * What was being done when it failed; each step has its own HTTP status rule:
 * - `answer`: a code or credential typed or made for a challenge (429 locked, 401 wrong, else 400);
 * - `enrol-answer`: the code proving an address or number at enrolment (429 locked, else 401);
 * - `send`: a code or link to send (429 when the cooldown or a budget refused it, else 400);
 * - `outside-start`: an order to an outside app (503 when its service is down, 429 rate limited, else 400);
 * - `link`: a sign-in link opened (403 in another browser, else 410: used or expired).
 */
export type FailureStep = 'answer' | 'enrol-answer' | 'send' | 'outside-start' | 'link';

export interface OutcomeView {
  message: string;
  status: number;
  /** Seconds for the Retry-After header, when the step's rule sends one. */
  retryAfterSeconds?: number;
}

/** Whether a start was refused by the send cooldown or a sending budget (src/factors/shared/send-guard.ts). */
export const isSendRefusal = (failure: Failure) => failure.reason === 'cooldown' || failure.reason === 'rate_limited';

/** The key under `factor_errors` that tells this failure. */
export function failureKey(locale: Locale, failure: Failure, source?: FailureSource): string {
  const { reason } = failure;
  if (source?.readsCode) return reason === 'used' || reason === 'expired' ? `${reason}_code` : reason;
  if (source && hasMessage(locale, `factor_errors.${source.id}_${reason}`)) return `${source.id}_${reason}`;
  return reason;
}

/** The failure in the page's words, with the minutes and attempts it mentions. */
export function failureMessage(locale: Locale, failure: Failure, source?: FailureSource): string {
  const minutes = Math.max(1, Math.ceil((failure.retryAfterSeconds ?? 60) / 60));
  return translator(locale)(`factor_errors.${failureKey(locale, failure, source)}`, {
    minutes,
    seconds: failure.retryAfterSeconds ?? 0,
    left: failure.attemptsLeft ?? 0,
  });
}

function statusOf(step: FailureStep, failure: Failure): { status: number; retry: boolean } {
  const { reason } = failure;
  switch (step) {
    case 'answer':
      return { status: answerFailureStatus(failure).status, retry: reason === 'locked' };
    case 'enrol-answer':
      return { status: reason === 'locked' ? 429 : 401, retry: false };
    case 'send':
      return { status: isSendRefusal(failure) ? 429 : 400, retry: isSendRefusal(failure) };
    case 'outside-start':
      return { status: reason === 'provider_unavailable' ? 503 : reason === 'rate_limited' ? 429 : 400, retry: true };
    case 'link':
      return { status: reason === 'other_browser' ? 403 : 410, retry: false };
  }
}

/** The status of a wrong answer (also one a module words itself, as a passkey instead of the password). */
export function answerFailureStatus(failure: { reason: string; retryAfterSeconds?: number }): { status: number; retryAfterSeconds?: number } {
  const locked = failure.reason === 'locked';
  return { status: locked ? 429 : failure.reason === 'wrong_code' ? 401 : 400, retryAfterSeconds: locked ? failure.retryAfterSeconds : undefined };
}

/** The one mapping of a failure to what the page says, its HTTP status and Retry-After. */
export function outcomeView(locale: Locale, step: FailureStep, failure: Failure, source?: FailureSource): OutcomeView {
  const { status, retry } = statusOf(step, failure);
  return {
    message: failureMessage(locale, failure, source),
    status,
    retryAfterSeconds: retry && failure.retryAfterSeconds ? failure.retryAfterSeconds : undefined,
  };
}

/** Sets Retry-After when the view has one; returns the view for the page. */
export function withRetryAfter<View extends { retryAfterSeconds?: number }>(ctx: Context, view: View): View {
  if (view.retryAfterSeconds) ctx.set('Retry-After', String(view.retryAfterSeconds));
  return view;
}

/** `outcomeView` with its Retry-After header set on the response. */
export function failureResponse(ctx: Context, locale: Locale, step: FailureStep, failure: Failure, source?: FailureSource): OutcomeView {
  return withRetryAfter(ctx, outcomeView(locale, step, failure, source));
}
