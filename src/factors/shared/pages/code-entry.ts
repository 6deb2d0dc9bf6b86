import { NyckelError } from '../../../errors.ts';
import type { PageExtra, PageHost, SignInPage, Step } from '../../ui-contract.ts';
import { readCode } from './answers.ts';
import { codeChallengeView, setupView } from './views.ts';

/**
 * The user reads the code from something they hold (an app, a printed list): nothing to send and
 * nowhere to choose, so the second step goes straight to the code page. A factor enrolled by
 * scanning (an authenticator app) shows its setup page at enrolment.
 */
export function codeEntryPage(options: { alphanumeric?: boolean } = {}): SignInPage {
  const alphanumeric = options.alphanumeric ?? false;

  async function challenge(host: PageHost, challengeId: string, extra: PageExtra = {}): Promise<Step> {
    if (host.enrolling) {
      if (host.module.enrol.setup) return setupPage(host, challengeId, extra);
      return { view: await codeChallengeView(host, challengeId, extra) };
    }
    // No challenge row, no target, no resend. A module with a `status` (app + QR) gives the QR code
    // the app scans to compute the code.
    const shown = host.module.status ? await host.module.status(host.challengeCtx, challengeId) : undefined;
    const qrText = shown?.status === 'pending' ? shown.qr : undefined;
    return {
      view: {
        template: 'mfa-code',
        model: {
          ...host.frame,
          factor: host.module.id,
          challengeId,
          challengePath: `${host.factorPath}/challenge/${challengeId}`,
          canResend: false,
          prompt: host.t(`factors.${host.module.id}.prompt`),
          alphanumeric,
          qr: qrText ? await host.qrSvg(qrText) : undefined,
          qrText,
          // No start page for these: "don't ask again" is chosen with the code.
          rememberDays: host.rememberDays,
          otherMethods: await host.otherMethods(),
          error: extra.error,
          notice: extra.notice,
        },
        status: extra.status,
      },
    };
  }

  async function setupPage(host: PageHost, challengeId: string, extra: PageExtra): Promise<Step> {
    const setup = await host.module.enrol.setup!(host.challengeCtx, challengeId);
    if (!setup) throw new NyckelError('session_expired');
    return { view: await setupView(host, challengeId, setup, extra) };
  }

  return {
    rememberWithAnswer: true,
    enrolsAtTarget: false,
    async begin(host) {
      const outcome = await host.module.start(host.challengeCtx, {});
      if (outcome.status === 'failed') throw new NyckelError('not_found');
      // The code page at once, a request less (its form names the challenge). One with a status (app +
      // QR) has the challenge's own address instead, so that a reload shows the same QR code.
      if (!host.module.status) return challenge(host, outcome.challengeId);
      return { redirect: `${host.factorPath}/challenge/${outcome.challengeId}` };
    },
    async beginEnrolment(host, input) {
      return beginTargetedEnrolment(host, input);
    },
    challenge,
    readAnswer: (form, enrolling) => readCode(form, { alphanumeric, enrolling }),
    async enrolmentNotVerified(host, challengeId, outcome, extra) {
      if (outcome.status !== 'failed') return undefined;
      if (host.module.enrol.setup) {
        const shown = host.failure('answer', outcome, true);
        return setupPage(host, challengeId, { ...extra, error: shown.message, status: shown.status });
      }
      const shown = host.failure('enrol-answer', outcome);
      return { view: await codeChallengeView(host, challengeId, { error: shown.message, status: shown.status }) };
    },
  };
}

/** Enrolment by a code sent to a target, or an app's setup: begin, then the challenge page. */
export async function beginTargetedEnrolment(host: PageHost, input: { targetId?: string; label?: string }): Promise<Step> {
  const outcome = await host.module.enrol.begin(host.challengeCtx, { targetId: input.targetId ?? '', label: input.label });
  if (outcome.status === 'failed') throw host.startRefused(outcome);
  return { redirect: `${host.factorPath}/challenge/${outcome.challengeId}` };
}
