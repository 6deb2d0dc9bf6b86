import type { Context } from 'koa';
import type { FactorModule } from '../../factors/contract.ts';
import type { SecondFactorPolicy } from '../../factors/policy.ts';
import type { ChallengeStore } from '../../factors/shared/challenges.ts';
import type { PageHost, ShownChallenge, SignInPage } from '../../factors/ui-contract.ts';
import { NyckelError } from '../../errors.ts';
import { failureMessage } from '../shared/outcome-view.ts';
import { sendRefusedError } from '../shared/send-refusal.ts';
import { pollView } from '../shared/poll-view.ts';
import { qrDataUrl, qrSvgDataUrl } from '../shared/qr.ts';
import { scriptJson } from '../shared/script-json.ts';
import type { SignInState } from './sign-in-state.ts';
import type { SignInSteps } from './sign-in-steps.ts';

export interface PageHostDependencies {
  policy: SecondFactorPolicy;
  challenges: ChallengeStore;
  steps: SignInSteps;
  /** The state of a queued message, to tell the user when it could not be sent yet. */
  deliveryState: (id: string) => Promise<{ status: 'queued' | 'sent' | 'failed'; lastError: string | null } | undefined>;
}

/**
 * What a factor's page kind may use for one request of a sign-in (see PageHost in ui-contract.ts).
 * `offered`: the methods this request already found offered, if it asked.
 */
export function pageHost(
  deps: PageHostDependencies,
  ctx: Context,
  state: SignInState,
  module: FactorModule,
  page: SignInPage,
  enrolling: boolean,
  offered?: Promise<FactorModule[]>,
): PageHost {
  const { policy } = deps;
  const clientId = state.challengeCtx.clientId;
  const mfaPath = `/interaction/${state.details.uid}/mfa`;
  // "Forgot your device?" sends what this very method sends: not offered on its own page.
  const forgotDevice = state.frame.forgotDevice && policy.forgotDeviceFallback(clientId, state.details.params)?.id !== module.id;
  const offeredNow = () => (offered ??= policy.offered(state.user, clientId, state));
  const { t } = state;

  async function deliveryProblem(challenge: ShownChallenge): Promise<string | undefined> {
    const data = (challenge.data ?? {}) as { deliveryId?: string; deliveryFailed?: boolean };
    const delivery = data.deliveryId ? await deps.deliveryState(data.deliveryId) : undefined;
    // A text sent after the answer (to a typed number) that the provider refused.
    if (data.deliveryFailed) return t('factor_errors.send_failed');
    if (delivery?.status === 'failed') return t('factor_errors.delivery_failed');
    if (delivery?.status === 'queued' && delivery.lastError) return t('mfa.delivery_retrying');
    return undefined;
  }

  return {
    module,
    challengeCtx: state.challengeCtx,
    frame: { ...state.frame, forgotDevice },
    enrolling,
    mfaPath,
    factorPath: `${mfaPath}/${enrolling ? 'enrol/' : ''}${module.id}`,
    t,
    rememberDays: policy.of(clientId).rememberDays,
    rememberAnswered: deps.steps.rememberAnswered(ctx),
    sendAtOnce: ctx.query.send === '1',
    otherMethods: async () => (await offeredNow()).length > 1,
    stronger: async () => policy.strongerThan(module, await offeredNow()).map((m) => ({ id: m.id, name: t(`factors.${m.id}.name`) })),
    failure: (step, failure, named) => deps.steps.failure(ctx, state, step, failure, named ? module : undefined),
    startRefused: (failure) => sendRefusedError(failure) ?? new NyckelError('invalid_input'),
    qrSvg: qrSvgDataUrl,
    qrPng: qrDataUrl,
    scriptJson,
    findChallenge: async (challengeId, types) => (await deps.challenges.find(state.challengeCtx, challengeId, types)) ?? undefined,
    openChallenge: () => deps.challenges.open(state.challengeCtx, module.id),
    deliveryProblem,
    pollState: (challengeId) =>
      pollView(module, state.challengeCtx, challengeId, ctx.query.mode, (outcome) => failureMessage(state.frame.locale, outcome), page.display),
  };
}
