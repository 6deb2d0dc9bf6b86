import type Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import type { Locale } from '../accounts/accounts.ts';
import type { Settings } from '../config/settings.ts';
import type { FactorId } from '../clients/clients-file.ts';
import type { Translate } from '../i18n/i18n.ts';
import type { ChallengeContext, FactorModule, FailureReason, PendingDisplay, VerifyOutcome } from './contract.ts';

/**
 * The page side of a factor for signing in. Each factor's `ui.ts` picks one of the shared page kinds
 * (src/factors/shared/pages/: code entry, targeted start, poll with QR, WebAuthn ceremony) and
 * configures it; the generic sign-in routes (src/web/sign-in/) loop over these and never ask which
 * factor or kind they serve.
 */
export interface FactorUi {
  readonly id: FactorId;
  /** How the second step with this factor runs: its start, its challenge and enrolment pages, its answer. */
  readonly page: SignInPage;
  /** Scripts the factor's pages load from /assets/<name> (files in the factor's `scripts/` folder). */
  readonly scripts?: readonly FactorScript[];
  /** The factor's failures are told in its own words (`factor_errors.<id>_<reason>`) when it has them. */
  readonly failures: { readsCode?: boolean };
  /** SVG images the installation supplies for the factor's pages (a trademark), served at /assets/<name>. */
  images?(settings: Settings): readonly FactorImage[];
  /** Pages of the factor's own, mounted under /interaction/:uid (e.g. the landing page of a link). */
  routes?(router: Router, host: FactorRouteHost): void;
  /** How "Add a method" on the account pages offers it; absent: not added there (addresses, numbers and codes have sections of their own). */
  readonly account?: AccountAdd;
}

/** A factor's button under "Add a method" on the account pages. */
export interface AccountAdd {
  /** The button's words (a locale key). */
  readonly label: string;
  /** `setup`: the generic account page shows the module's setup (QR code and key) and takes a code; else a link to the factor's own account pages. */
  readonly via: 'setup' | { readonly href: string };
  /** Offered only while the user has none (one BankID per person). */
  readonly once?: boolean;
  /** Offered only when the installation is set up for it. */
  available?(settings: Settings): boolean;
}

/** A script served at /assets/<name>, read from `file` (default: the factor folder's scripts/<name>). */
export interface FactorScript {
  name: string;
  file?: string;
}

/** An SVG image served at /assets/<name>, read once at start from `file`, which the setting `setting` names. */
export interface FactorImage {
  name: string;
  file: string;
  setting: string;
}

/** A page to render: a template (`name`, or `<factor id>/<name>` for one in the factor's folder) and its model. */
export interface View<Model extends object = object> {
  template: string;
  model: Model;
  status?: number;
}

/** What the generic routes do next after a page kind had its say. */
export type Step =
  | { view: View }
  | { redirect: string }
  /** Verified by this request: the routes record it and continue the sign-in. */
  | { verified: Extract<VerifyOutcome, { status: 'verified' }> }
  /** Answered in an earlier request: finish when the sign-in has its factors, else back to the methods. */
  | { answered: true };

/** Fields every sign-in page has (the layout, the cancel form, the "forgot your device?" link). */
export interface SignInFrame {
  locale: Locale;
  /** The client signed in to: its logo and support contact on the page (src/branding/brand.ts). */
  clientId: string;
  clientName: string;
  uid: string;
  csrfToken: string;
  forgotDevice: boolean;
  lostDeviceHref?: string;
}

/** A posted answer, read and checked at the edge; `invalid` names the message to show. */
export type Answer = { code: string } | { credential: unknown } | { invalid: string };

/** How a failure looks on a page: its words and its HTTP status (Retry-After already set). */
export interface FailureShown {
  message: string;
  status: number;
}

/** The rule a failure's HTTP status follows (see src/web/shared/outcome-view.ts). */
export type FailureStep = 'answer' | 'enrol-answer' | 'send' | 'outside-start' | 'link';

/** What a poll page shows now (see src/web/shared/poll-view.ts). */
export interface PollState {
  status: 'verified' | 'failed' | 'pending';
  /** The hint in words (pending), or why it failed (failed). */
  message?: string;
  /** The module's hint code (pending), for a page that shows some hints only after a choice. */
  hint?: string;
  /** The QR code to show now, as a data URL (pending). */
  qr?: string;
  /** A number to pick in the app (pending; from the factor's `display`). */
  number?: string;
  /** Seconds until the request ends unanswered (pending; from the factor's `display`), for a countdown. */
  expiresIn?: number;
}

/** A stored challenge as a page shows it. */
export interface ShownChallenge {
  target: string | null;
  createdAt: Date;
  expiresAt: Date;
  data: unknown;
}

/** Extras a page is shown again with. */
export interface PageExtra {
  error?: string;
  notice?: string;
  status?: number;
  label?: string;
}

/**
 * What the sign-in routes give a page kind for one request: the factor, the sign-in it serves, and
 * the web-side tools (QR codes, failure words, the challenge store) it must not import itself.
 */
export interface PageHost {
  readonly module: FactorModule;
  readonly challengeCtx: ChallengeContext;
  readonly frame: SignInFrame;
  readonly enrolling: boolean;
  /** `/interaction/:uid/mfa` */
  readonly mfaPath: string;
  /** `/interaction/:uid/mfa[/enrol]/:factor` */
  readonly factorPath: string;
  readonly t: Translate;
  /** "Don't ask again" for this many days (0: not offered). */
  readonly rememberDays: number;
  /**
   * The user came from the sign-in's own step (the password, "Use another method"), not a typed or
   * prefetched address: a code to the one target may go at once.
   */
  readonly sendAtOnce: boolean;
  /** "Don't ask again" was already answered in this sign-in (on a start page): not asked again. */
  readonly rememberAnswered: boolean;
  /** Whether the user has other methods to choose ("Use another method"). */
  otherMethods(): Promise<boolean>;
  /** Stronger methods to suggest instead of this one (a restricted factor), with their names. */
  stronger(): Promise<Array<{ id: string; name: string }>>;
  /** A failure shown (words in the factor's own terms when `named`), its Retry-After set. */
  failure(step: FailureStep, failure: { reason: FailureReason; retryAfterSeconds?: number; attemptsLeft?: number }, named?: boolean): FailureShown;
  /** For a start with nowhere to show its failure: the error page (429 for a send refused by a cooldown or budget). */
  startRefused(failure: { reason: FailureReason; retryAfterSeconds?: number }): Error;
  qrSvg(text: string): Promise<string>;
  qrPng(text: string): Promise<string>;
  /** JSON for a `<script type="application/json">` element. */
  scriptJson(value: unknown): string;
  findChallenge(challengeId: string, types: string[]): Promise<ShownChallenge | undefined>;
  /** This sign-in's challenge of the factor still waiting for an answer (a page reloaded, the back button). */
  openChallenge(): Promise<string | undefined>;
  /** Why a sent code may not have arrived (refused, failed, retrying), in words. */
  deliveryProblem(challenge: ShownChallenge): Promise<string | undefined>;
  pollState(challengeId: string): Promise<PollState>;
}

/** A shared page kind, configured by a factor's ui. */
export interface SignInPage {
  /** "Don't ask again" is chosen on the page that answers (there is no start page before it). */
  readonly rememberWithAnswer: boolean;
  /** On the enrolment list: a choice of the user's targets (addresses, numbers) rather than one button. */
  readonly enrolsAtTarget: boolean;
  /** GET /mfa/:factor: straight to a code page, a start page, a poll page or a ceremony. */
  begin(host: PageHost): Promise<Step>;
  /** POST /mfa/:factor/start (a target chosen or typed); only for pages that have a start page. */
  start?(host: PageHost, input: { targetId?: string; typed?: string }): Promise<Step>;
  /** POST /mfa/enrol/:factor/start. */
  beginEnrolment(host: PageHost, input: { targetId?: string; label?: string }): Promise<Step>;
  /** The page of a challenge (shown again with an error or a notice). */
  challenge(host: PageHost, challengeId: string, extra?: PageExtra): Promise<Step>;
  /** GET of a challenge page for pages answered outside the browser: verify it here when confirmed. */
  arrive?(host: PageHost, challengeId: string): Promise<Step>;
  /** How a pending challenge's `display` reads on the page (the number to pick, the seconds left). */
  display?: (display: PendingDisplay) => { number?: string; expiresIn?: number };
  /** The JSON a waiting page polls, for pages answered outside the browser. */
  pollStatus?(host: PageHost, challengeId: string): Promise<PollState>;
  /** The posted answer of a challenge; at enrolment a code is passed on as typed. */
  readAnswer(form: unknown, enrolling: boolean): Answer;
  /** An enrolment answer that did not verify: the page to show again. */
  enrolmentNotVerified(
    host: PageHost,
    challengeId: string,
    outcome: Exclude<VerifyOutcome, { status: 'verified' }>,
    extra: PageExtra,
  ): Promise<Step | undefined>;
}

/** What a factor's own routes may use of the sign-in (see email-link's landing page). */
export interface FactorRouteHost {
  /** Parses a posted form (put before a POST handler). */
  readonly form: Middleware;
  /** The sign-in of this request (loaded once; session_expired when there is none). */
  signIn(ctx: Context): Promise<SignInOfRequest>;
  /** The module, when this sign-in may use it. */
  allowed(ctx: Context, id: FactorId): Promise<FactorModule>;
  /** Records a verified factor; true when the sign-in now has its two factors. */
  recordVerified(ctx: Context, module: FactorModule, outcome: Extract<VerifyOutcome, { status: 'verified' }>): Promise<boolean>;
  recordFailure(ctx: Context, module: FactorModule, outcome: Extract<VerifyOutcome, { status: 'failed' }>): Promise<void>;
  failure(ctx: Context, step: FailureStep, failure: { reason: FailureReason; retryAfterSeconds?: number }): FailureShown;
  render(ctx: Context, view: View): void;
  /** A plain message page in the browser's language (no sign-in to name). */
  message(ctx: Context, titleKey: string, messageKey: string, status: number): void;
  /** Whether a challenge was used or expired already (for a link opened without its sign-in). */
  spent(challengeId: string): Promise<'used' | 'expired' | undefined>;
  readForm(ctx: Context): { _csrf: string };
  assertCsrf(ctx: Context, token: string): void;
}

/** The loaded sign-in as a factor's own routes see it. */
export interface SignInOfRequest {
  frame: SignInFrame;
  challengeCtx: ChallengeContext;
  t: Translate;
}
