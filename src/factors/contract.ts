import type { HeldAs } from './shared/held-enrolments.ts';
import type Router from '@koa/router';
import type { Locale } from '../accounts/accounts.ts';
import type { FactorId } from '../clients/clients-file.ts';
import type { User } from '../generated/prisma/client.ts';
import type { HeldRow } from './shared/held-enrolments.ts';

/**
 * The one contract of a second-factor module. Each module lives in its own folder under src/factors/
 * and is listed once in registry.ts; the engine and the hosted pages know nothing else about it.
 */

/** Two factors only count as two when their channels differ; a password is `knowledge`. */
export type Channel = 'knowledge' | 'email' | 'phone' | 'app' | 'device' | 'eid' | 'backup';

/** How the hosted pages drive the factor. */
export type FactorKind =
  /** A code is sent to a registered target (an address, a number) and typed back. */
  | 'code-to-target'
  /** A link is sent to a registered target and opened in the same browser (a code as fallback). */
  | 'link-to-target'
  /** The user reads a code from something they hold (an app, a printed list) and types it. */
  | 'code'
  /** The browser performs a WebAuthn ceremony (passkeys, security keys); `browser` carries its options. */
  | 'webauthn'
  /** Something outside the browser confirms (an eID app, a phone); the page polls `status` until done. */
  | 'poll';

export type FailureReason =
  | 'wrong_code'
  | 'expired'
  | 'used'
  | 'locked'
  | 'cooldown'
  | 'not_enrolled'
  | 'other_browser'
  | 'delivery_failed'
  /** A typed phone number that cannot be read. */
  | 'invalid_number'
  /** SMS pumping protection: the number's country is not allowed, or a sending budget is spent. */
  | 'country_not_allowed'
  | 'rate_limited'
  /** A synchronous send (SMS) failed at the provider; nothing usable was written. */
  | 'send_failed'
  /** The provider that checks the code (Twilio Verify) could not be asked. */
  | 'check_failed'
  /** The person cancelled in the outside app (an eID), or the order was replaced. */
  | 'cancelled'
  /** Someone else confirmed (an eID of another person than the one bound to the account). */
  | 'identity_mismatch'
  /** The outside service that confirms (BankID) could not be asked; nothing was recorded. */
  | 'provider_unavailable';

export type VerifyOutcome =
  | {
      status: 'verified';
      amr: readonly string[];
      target?: string;
      /**
       * The same right answer again, in the same sign-in that used it (a double submit, a link confirmed
       * twice): nothing new is proven, and the sign-in just continues.
       */
      repeated?: boolean;
      /** Something to tell the user before the sign-in continues (a translation key and its values). */
      notice?: { key: string; values?: Record<string, string | number> };
    }
  /** For kind `poll`: `hint` names what the page should say now, `qr` what it should show as a QR code. */
  | {
      status: 'pending';
      hint?: string;
      qr?: string;
      /** Anything else the page shows now, interpreted by the factor's own ui (push: the number to pick). */
      display?: PendingDisplay;
    }
  | { status: 'failed'; reason: FailureReason; retryAfterSeconds?: number; attemptsLeft?: number; hint?: string };

/** Values only a factor's ui knows how to show (src/factors/<id>/ui.ts). */
export type PendingDisplay = Readonly<Record<string, string | number>>;

export type StartOutcome =
  | {
      status: 'started';
      challengeId: string;
      maskedTarget?: string;
      /** For factors enrolled by scanning (an authenticator app): what the enrolment page shows. */
      setup?: { uri: string; secret: string };
      /** What the page's script needs (WebAuthn options JSON, an eID autostart token, …); never a secret. */
      browser?: Record<string, unknown>;
    }
  | { status: 'failed'; reason: FailureReason; retryAfterSeconds?: number };

/** A place a challenge can be sent to, as shown to the user. `id` is opaque to the pages. */
export interface FactorTarget {
  id: string;
  masked: string;
}

/** Everything a module may know about the sign-in it serves. */
export interface ChallengeContext {
  user: User;
  /** oidc-provider's interaction uid (the sign-in being completed). */
  uid: string;
  clientId: string;
  clientName: string;
  locale: Locale;
  ip: string;
  userAgent?: string;
  /** A keyed hash identifying this browser (for same-browser links). */
  browserHash: string;
  /** The issuer's base URL, for links in messages. */
  issuer: string;
  /** The user's enrolment rows as the sign-in read them at the start of this request (`heldFor`). */
  held?: readonly HeldRow[];
}

/** What sending and checking a code needs of a sign-in: whose it is, which interaction, which browser and client. */
export type ChallengeScope = Pick<ChallengeContext, 'uid' | 'browserHash' | 'ip' | 'userAgent' | 'clientId'> & { user: Pick<User, 'id'> };

export interface FactorModule {
  readonly id: FactorId;
  readonly channel: Channel;
  /** RFC 8176 values this factor contributes to `amr` when verified. */
  readonly amr: readonly string[];
  readonly kind: FactorKind;
  /** NIST 800-63B restricted authenticator (SMS): the pages suggest a stronger method the user has. */
  readonly restricted?: boolean;

  /** Whether the user can use this factor now. */
  isEnrolled(user: User): Promise<boolean>;
  /** Held as enrolment rows (set with `isEnrolled` by `heldAs` of shared/held-enrolments.ts): the engine reads them once for all methods. */
  readonly heldAs?: HeldAs;
  /** Where a challenge can go (registered addresses, numbers), masked; empty for kind `code`. */
  targets(user: User): Promise<FactorTarget[]>;
  /** How a stored target is shown (`Ma…ge@Sc…se`, `xxxx-xxxx72`). */
  maskTarget(target: string): string;

  enrol: {
    /**
     * Enrolling creates a new credential (an app scanned, a passkey registered) instead of proving one
     * the account already has: during sign-in it may be enrolled only by a user with no second factor.
     * Implied when `setup` is present.
     */
    readonly createsCredential?: boolean;
    /** Where an enrolment can be proven (e.g. registered addresses not yet verified), masked. */
    targets(user: User): Promise<FactorTarget[]>;
    begin(ctx: ChallengeContext, input: { targetId?: string; label?: string }): Promise<StartOutcome>;
    /** `label` names what was enrolled (e.g. "My phone" for an authenticator app). */
    complete(ctx: ChallengeContext, input: { challengeId: string; code?: string; credential?: unknown; label?: string }): Promise<VerifyOutcome>;
    /** For factors enrolled by scanning: the setup of an enrolment begun in this sign-in, to show it again. */
    setup?(ctx: ChallengeContext, challengeId: string): Promise<{ uri: string; secret: string } | undefined>;
  };

  /** Sends or prepares a challenge. `target` is a target id or a typed value (`typed`). */
  start(ctx: ChallengeContext, input: { targetId?: string; typed?: string; resendOf?: string }): Promise<StartOutcome>;
  /** Checks an answer; the outcome is a value, never an exception for a wrong answer. */
  verify(ctx: ChallengeContext, input: { challengeId: string; code?: string; token?: string; credential?: unknown }): Promise<VerifyOutcome>;
  /** The state of a challenge without answering it (a link clicked in another tab). */
  status?(ctx: ChallengeContext, challengeId: string): Promise<VerifyOutcome>;
  /** Gives up a challenge still open (kind `poll`: the user left or chose another method). */
  cancel?(ctx: ChallengeContext, challengeId: string): Promise<void>;

  /** Pages of the module's own, mounted under /interaction/:uid (e.g. the landing page of a link). */
  routes?(router: Router): void;
  /**
   * What the factor's own page shows beyond the challenge, as the page's `extras` (BankID: its mark,
   * which way to start is the default on this device, the link that opens the app).
   */
  pageModel?(ctx: ChallengeContext, challengeId?: string): Promise<Record<string, unknown>>;
}
