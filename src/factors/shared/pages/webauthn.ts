import { NyckelError } from '../../../errors.ts';
import type { PageExtra, PageHost, SignInFrame, SignInPage, Step, View } from '../../ui-contract.ts';
import { readCredential } from './answers.ts';

/** The page of a WebAuthn ceremony (sign-in, or enrolment with a name field). */
export interface CeremonyModel extends SignInFrame {
  factor: string;
  enrolling: boolean;
  action: string;
  optionsJson: string;
  rememberDays: number;
  otherMethods: boolean;
  label?: string;
  error?: string;
}

/**
 * The browser performs a WebAuthn ceremony. Every showing starts a fresh single-use challenge whose
 * options the page's script hands to the browser; the answer is the credential it returns.
 */
export function webauthnPage(options: { template: string }): SignInPage {
  async function ceremony(host: PageHost, extra: PageExtra = {}): Promise<Step> {
    const outcome = host.enrolling ? await host.module.enrol.begin(host.challengeCtx, {}) : await host.module.start(host.challengeCtx, {});
    if (outcome.status === 'failed') throw new NyckelError('not_found');
    const view: View<CeremonyModel> = {
      template: options.template,
      model: {
        ...host.frame,
        factor: host.module.id,
        enrolling: host.enrolling,
        action: `${host.factorPath}/challenge/${outcome.challengeId}/verify`,
        // Inside <script type="application/json">: nothing in it may end the element.
        optionsJson: host.scriptJson(outcome.browser),
        rememberDays: host.enrolling ? 0 : host.rememberDays,
        otherMethods: !host.enrolling && (await host.otherMethods()),
        label: extra.label,
        error: extra.error,
      },
      status: extra.status,
    };
    return { view };
  }

  return {
    rememberWithAnswer: true,
    enrolsAtTarget: false,
    begin: (host) => ceremony(host),
    beginEnrolment: (host) => ceremony(host),
    challenge: (host, _challengeId, extra) => ceremony(host, extra),
    readAnswer: (form) => readCredential(form),
    async enrolmentNotVerified(host, _challengeId, outcome, extra) {
      if (outcome.status !== 'failed') return undefined;
      const shown = host.failure('answer', outcome, true);
      return ceremony(host, { ...extra, error: shown.message, status: shown.status });
    },
  };
}
