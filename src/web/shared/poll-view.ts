import { z } from 'zod';
import type { ChallengeContext, FactorModule, PendingDisplay, VerifyOutcome } from '../../factors/contract.ts';
import type { PollState } from '../../factors/ui-contract.ts';
import { hasMessage, translator } from '../../i18n/i18n.ts';
import { qrSvgDataUrl } from './qr.ts';

const pollMode = z.enum(['same', 'qr']).catch('qr');

/** What the page of a poll factor shows now (also the JSON its script polls). */
export type PollView = PollState;

/**
 * What the page of a poll factor (BankID) shows now: the module's state, the message for its hint in
 * the page's language, and the QR code to show. `mode` is how the app was started (`same` device or
 * `qr`): the same hint reads differently. Used by the sign-in pages and the account pages.
 */
export async function pollView(
  module: FactorModule,
  challengeCtx: ChallengeContext,
  challengeId: string,
  mode: unknown,
  failureText: (outcome: Extract<VerifyOutcome, { status: 'failed' }>) => string,
  /** The factor's ui's reading of what else a pending challenge shows (push: the number, the countdown). */
  display?: (display: PendingDisplay) => Pick<PollView, 'number' | 'expiresIn'>,
): Promise<PollView> {
  const outcome: VerifyOutcome = module.status ? await module.status(challengeCtx, challengeId) : { status: 'failed', reason: 'expired' };
  const t = translator(challengeCtx.locale);
  const hintText = (hint?: string) => {
    if (!hint) return undefined;
    const started = pollMode.parse(mode);
    const key = [`factors.${module.id}.hints.${hint}_${started}`, `factors.${module.id}.hints.${hint}`].find((k) => hasMessage(challengeCtx.locale, k));
    return t(key ?? `factors.${module.id}.hints.unknown`);
  };
  if (outcome.status === 'verified') return { status: 'verified' };
  if (outcome.status === 'failed') {
    return {
      status: 'failed',
      message: (outcome.reason === 'expired' || outcome.reason === 'cancelled' ? hintText(outcome.hint) : undefined) ?? failureText(outcome),
    };
  }
  return {
    status: 'pending',
    message: hintText(outcome.hint),
    hint: outcome.hint,
    qr: outcome.qr ? await qrSvgDataUrl(outcome.qr) : undefined,
    ...(outcome.display && display ? display(outcome.display) : {}),
  };
}
