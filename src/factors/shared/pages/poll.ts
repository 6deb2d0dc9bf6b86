import type { PageExtra, PageHost, PollState, SignInFrame, SignInPage, Step, View } from '../../ui-contract.ts';
import { readCode } from './answers.ts';
import { codeChallengeView } from './views.ts';

/** The page of a factor confirmed outside the browser (an eID app, a phone): QR code, hint, countdown. */
export interface PollModel extends SignInFrame {
  factor: string;
  enrolling: boolean;
  challengePath?: string;
  launchUrl?: string;
  qr?: string;
  number?: string;
  expiresIn?: number;
  message?: string;
  error?: string;
  againPath: string;
  otherMethods: boolean;
  /** Shown again after the first showing (the page reloaded without its script): the status may be shown. */
  arrived: boolean;
  /** The factor's own additions (FactorModule.pageModel). */
  extras?: Record<string, unknown>;
}

interface PollPageState extends Omit<Partial<PollState>, 'status'> {
  challengeId?: string;
  arrived?: boolean;
  launchUrl?: string;
  error?: string;
  status?: number;
}

/**
 * Something outside the browser confirms (BankID, a push to a phone). The page polls `status` (the
 * module's state, its hint in the page's language, the QR code to show) and, once verified, comes
 * back to the challenge page, which records the factor once and finishes.
 */
export function pollPage(options: { template: string; display?: SignInPage['display'] }): SignInPage {
  async function page(host: PageHost, state: PollPageState): Promise<View<PollModel>> {
    return {
      template: options.template,
      model: {
        ...host.frame,
        factor: host.module.id,
        enrolling: host.enrolling,
        challengePath: state.challengeId ? `${host.factorPath}/challenge/${state.challengeId}` : undefined,
        launchUrl: state.launchUrl,
        qr: state.qr,
        number: state.number,
        expiresIn: state.expiresIn,
        message: state.message,
        error: state.error,
        againPath: host.enrolling ? host.mfaPath + '/enrol' : host.factorPath,
        otherMethods: !host.enrolling && (await host.otherMethods()),
        arrived: state.arrived ?? false,
        extras: await host.module.pageModel?.(host.challengeCtx, state.challengeId),
      },
      status: state.status,
    };
  }

  async function begin(host: PageHost): Promise<Step> {
    const outcome = host.enrolling ? await host.module.enrol.begin(host.challengeCtx, {}) : await host.module.start(host.challengeCtx, {});
    if (outcome.status === 'failed') {
      const shown = host.failure('outside-start', outcome, true);
      return { view: await page(host, { error: shown.message, status: shown.status }) };
    }
    const shown = await host.pollState(outcome.challengeId);
    // The link that opens the app on this device (BankID's autostart link), when the module gives one.
    const launchUrl = typeof outcome.browser?.launchUrl === 'string' ? outcome.browser.launchUrl : undefined;
    const { qr, message, number, expiresIn } = shown;
    return { view: await page(host, { challengeId: outcome.challengeId, launchUrl, qr, message, number, expiresIn }) };
  }

  async function arrive(host: PageHost, challengeId: string): Promise<Step> {
    const shown = await host.pollState(challengeId);
    if (shown.status === 'verified') {
      // Of parallel requests only one gets `verified` from verify (the order is consumed once).
      const outcome = await host.module.verify(host.challengeCtx, { challengeId });
      if (outcome.status === 'verified') return { verified: outcome };
      return { answered: true };
    }
    if (shown.status === 'failed') return { view: await page(host, { error: shown.message, status: 400 }) };
    const { qr, message, number, expiresIn } = shown;
    return { view: await page(host, { challengeId, qr, message, number, expiresIn, arrived: true }) };
  }

  return {
    rememberWithAnswer: false,
    enrolsAtTarget: true,
    display: options.display,
    begin,
    beginEnrolment: (host) => begin(host),
    // Shown only after a posted answer or a resend (nothing is typed on these pages): the challenge as sent.
    challenge: async (host, challengeId, extra: PageExtra = {}) => ({ view: await codeChallengeView(host, challengeId, extra) }),
    arrive,
    pollStatus: (host, challengeId) => host.pollState(challengeId),
    // Nothing is typed: a posted "answer" is judged by the module like any other.
    readAnswer: (form, enrolling) => readCode(form, { alphanumeric: false, enrolling }),
    async enrolmentNotVerified(host, challengeId) {
      // Not confirmed (yet): the page again, with what the outside service says.
      const shown = await host.pollState(challengeId);
      const open = shown.status === 'pending';
      return {
        view: await page(host, {
          challengeId: open ? challengeId : undefined,
          qr: shown.qr,
          message: shown.message,
          error: open ? undefined : shown.message,
          status: open ? 200 : 400,
          arrived: true,
        }),
      };
    },
  };
}
