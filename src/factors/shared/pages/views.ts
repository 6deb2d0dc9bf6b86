import { NyckelError } from '../../../errors.ts';
import { hasMessage } from '../../../i18n/i18n.ts';
import type { PageExtra, PageHost, SignInFrame, View } from '../../ui-contract.ts';

/** The code page of a code (or link) sent to a target, at sign-in or when proving a target at enrolment. */
export interface SentCodeModel extends SignInFrame {
  factor: string;
  challengeId: string;
  challengePath: string;
  canResend: boolean;
  enrolling: boolean;
  maskedTarget?: string;
  codeSentKey: string;
  stronger: Array<{ id: string; name: string }>;
  minutes: number;
  /** "Don't ask again" with the code, when no start page asked it before (0: not asked here). */
  rememberDays: number;
  otherMethods: boolean;
  error?: string;
  notice?: string;
}

/**
 * The page of a challenge sent to a target: the code page, or for a link (`waitForLink`) the page
 * that waits for it to be opened. The challenge is looked up as the module stored it.
 */
export async function codeChallengeView(
  host: PageHost,
  challengeId: string,
  extra: PageExtra,
  options: { waitForLink?: boolean } = {},
): Promise<View<SentCodeModel>> {
  const { module } = host;
  const challenge = await host.findChallenge(challengeId, [host.enrolling ? `${module.channel}-enrolment` : module.id]);
  if (!challenge) throw new NyckelError('session_expired');
  const minutes = Math.max(1, Math.round((challenge.expiresAt.getTime() - challenge.createdAt.getTime()) / 60000));
  const ownSentKey = `factors.${module.id}.code_sent`;
  return {
    template: options.waitForLink && !host.enrolling ? 'mfa-wait' : 'mfa-code',
    model: {
      ...host.frame,
      factor: module.id,
      challengeId,
      challengePath: `${host.factorPath}/challenge/${challengeId}`,
      canResend: !host.enrolling,
      enrolling: host.enrolling,
      maskedTarget: challenge.target ? module.maskTarget(challenge.target) : undefined,
      codeSentKey: hasMessage(host.frame.locale, ownSentKey) ? ownSentKey : 'mfa.code_sent',
      stronger: host.enrolling ? [] : await host.stronger(),
      minutes,
      rememberDays: host.enrolling || host.rememberAnswered ? 0 : host.rememberDays,
      otherMethods: await host.otherMethods(),
      error: extra.error ?? (await host.deliveryProblem(challenge)),
      notice: extra.notice,
    },
    status: extra.status,
  };
}

/** The enrolment page of a factor enrolled by scanning: QR code, the key as text, a name, the code. */
export interface SetupModel extends SignInFrame {
  factor: string;
  challengePath: string;
  qr: string;
  uri: string;
  secretGroups: string;
  label?: string;
  error?: string;
}

export async function setupView(host: PageHost, challengeId: string, setup: { uri: string; secret: string }, extra: PageExtra): Promise<View<SetupModel>> {
  return {
    template: 'mfa-enrol-app',
    model: {
      ...host.frame,
      factor: host.module.id,
      challengePath: `${host.factorPath}/challenge/${challengeId}`,
      qr: await host.qrPng(setup.uri),
      uri: setup.uri,
      // Grouped by four for typing into an app by hand.
      secretGroups: setup.secret.match(/.{1,4}/g)!.join(' '),
      label: extra.label,
      error: extra.error,
    },
    status: extra.status,
  };
}
