import type { PageExtra, PageHost, SignInFrame, SignInPage, Step, View } from '../../ui-contract.ts';
import { readCode } from './answers.ts';
import { beginTargetedEnrolment } from './code-entry.ts';
import { codeChallengeView } from './views.ts';

/** The start page: choose a registered target (or type one), then a code or link is sent there. */
export interface TargetedStartModel extends SignInFrame {
  factor: string;
  /** Which typed target the page asks for: a phone number, or an address. */
  channel: string;
  stronger: Array<{ id: string; name: string }>;
  targets: Array<{ id: string; masked: string }>;
  rememberDays: number;
  otherMethods: boolean;
  error?: string;
}

/**
 * A code or a link sent to one of the user's addresses or numbers: a start page to choose where,
 * then the code page (or, for a link, the page that waits for it to be opened).
 */
export function targetedStartPage(options: { waitForLink?: boolean } = {}): SignInPage {
  async function startView(host: PageHost, extra: PageExtra = {}, targets?: TargetedStartModel['targets']): Promise<View<TargetedStartModel>> {
    return {
      template: 'mfa-start',
      model: {
        ...host.frame,
        factor: host.module.id,
        channel: host.module.channel,
        stronger: await host.stronger(),
        targets: targets ?? (await host.module.targets(host.challengeCtx.user)),
        rememberDays: host.rememberDays,
        otherMethods: await host.otherMethods(),
        error: extra.error,
      },
      status: extra.status,
    };
  }

  async function send(host: PageHost, to: { targetId?: string; typed?: string }, targets?: TargetedStartModel['targets']): Promise<Step> {
    const outcome = await host.module.start(host.challengeCtx, to);
    if (outcome.status === 'failed') {
      const shown = host.failure('send', outcome, true);
      return { view: await startView(host, { error: shown.message, status: shown.status }, targets) };
    }
    return { redirect: `${host.factorPath}/challenge/${outcome.challengeId}` };
  }

  return {
    rememberWithAnswer: false,
    enrolsAtTarget: true,
    async begin(host): Promise<Step> {
      const targets = await host.module.targets(host.challengeCtx.user);
      // One place to send a code to: sent at once, as TDC and Aiai do, and "don't ask again" moves to
      // the code page. A link keeps its start page (IDEP.WEB's), which asks that before the mail goes.
      if (targets.length !== 1 || options.waitForLink || !host.sendAtOnce) return { view: await startView(host, {}, targets) };
      // Reloaded, or back from the code page: the code already sent, not another one.
      const open = await host.openChallenge();
      if (open) return { redirect: `${host.factorPath}/challenge/${open}` };
      return send(host, { targetId: targets[0].id }, targets);
    },
    async start(host, input): Promise<Step> {
      if (!input.targetId && !input.typed) return { view: await startView(host, { error: host.t('mfa.choose_target'), status: 400 }) };
      return send(host, input.typed ? { typed: input.typed } : { targetId: input.targetId });
    },
    beginEnrolment: beginTargetedEnrolment,
    challenge: async (host, challengeId, extra = {}) => ({ view: await codeChallengeView(host, challengeId, extra, options) }),
    readAnswer: (form, enrolling) => readCode(form, { alphanumeric: false, enrolling }),
    async enrolmentNotVerified(host, challengeId, outcome) {
      if (outcome.status !== 'failed') return undefined;
      const shown = host.failure('enrol-answer', outcome);
      return { view: await codeChallengeView(host, challengeId, { error: shown.message, status: shown.status }, options) };
    },
  };
}
