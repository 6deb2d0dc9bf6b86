import type { ClientConfig, FactorId } from '../clients/clients-file.ts';
import type { Settings } from '../config/settings.ts';
import type { Context } from 'koa';
import type { User } from '../generated/prisma/client.ts';
import { acr } from './acr.ts';
import type { FactorModule } from './contract.ts';
import type { FactorEngine } from './engine.ts';
import { isPasskeyModule, type PasskeyModule } from './passkey/index.ts';
import { isRecoveryCodeModule, type RecoveryCodeModule } from './recovery-code/index.ts';
import type { RememberedBrowsers } from './remember.ts';
import { factorStrength, type VerifiedFactor } from './sign-ins.ts';
import type { HeldRow } from './shared/held-enrolments.ts';

export interface FactorPolicy {
  required: boolean;
  /** The methods the client allows, in the order they are offered. */
  methods: FactorId[];
  rememberDays: number;
  forgotDeviceEmail: boolean;
  allowEnrolmentAtLogin: boolean;
  /** Methods that may be the whole sign-in instead of the password (`passkey`: with user verification). */
  passwordless: FactorId[];
  /** Recovery codes stand in for a lost app or passkey even where `methods` does not list them. */
  recoveryCodesFallback: boolean;
}

/** The client's `mfa` block, or the defaults from the environment for a client without one. */
export function policyFor(client: ClientConfig | undefined, defaults: Settings['mfa']): FactorPolicy {
  const mfa = client?.mfa;
  return {
    required: mfa?.required ?? defaults.required,
    methods: mfa?.methods ?? defaults.methods,
    rememberDays: mfa?.remember_days ?? defaults.rememberDays,
    forgotDeviceEmail: mfa?.forgot_device_email ?? defaults.forgotDeviceEmail,
    allowEnrolmentAtLogin: mfa?.allow_enrolment_at_login ?? true,
    passwordless: mfa?.passwordless ?? [],
    recoveryCodesFallback: mfa?.recovery_codes_fallback ?? true,
  };
}

/** A relying party asks for step-up with `acr_values` naming the second-factor class (or an essential acr claim). */
export function requestsSecondFactor(params: Record<string, unknown>): boolean {
  const values = typeof params.acr_values === 'string' ? params.acr_values.split(/\s+/) : [];
  if (values.includes(acr.mfa)) return true;
  if (typeof params.claims === 'string') {
    try {
      const claims = JSON.parse(params.claims) as { id_token?: { acr?: { essential?: boolean; value?: string; values?: string[] } } };
      const requested = claims.id_token?.acr;
      if (requested?.essential && (requested.value === acr.mfa || requested.values?.includes(acr.mfa))) return true;
    } catch {
      return false;
    }
  }
  return false;
}

/** What the policy needs of the engine (the modules, and a user's methods for a client). */
type PolicyEngine = Pick<FactorEngine, 'modules' | 'policy' | 'offered' | 'enrollable' | 'secondFactorRequiredSomewhere' | 'methodsOf' | 'usableMethods'>;

/** What a sign-in has shown so far: a reset password waiting, and the factors verified (SignInState has both). */
export interface SignInProgress {
  pendingPassword: boolean;
  verified: readonly VerifiedFactor[];
  /** The user's enrolment rows as this request read them at its start: offered methods are judged on them instead of reading them again. */
  held?: readonly HeldRow[];
}

const NOTHING_YET: SignInProgress = { pendingPassword: false, verified: [] };

/** `sign-in`: the client's methods; `proof`: methods the user holds elsewhere, which open the way to add one the client accepts. */
export type OfferPurpose = 'sign-in' | 'proof';

/** A session as oidc-provider keeps it: whose, and with what acr it was signed in. */
export interface SessionSignIn {
  accountId?: string;
  acr?: string;
}

/** After the first step (password or session): finish, go on to the second factor, or no way on. */
export type FirstStepDecision =
  | { next: 'finish'; remembered: boolean }
  /** `offer`: the methods offered right after the first step, when they were asked for the decision. */
  | { next: 'second-factor'; offer?: Offer }
  | { next: 'unavailable' };

/** The methods offered to a sign-in, and what for. */
export interface Offer {
  modules: FactorModule[];
  purpose: OfferPurpose;
}

/**
 * The one place that answers the second-factor questions of a sign-in: whether one is needed (the
 * client requires it, the request asks for step-up, the browser is remembered), which methods are
 * offered and which can be enrolled now, whether recovery codes come with an enrolment, which
 * stronger methods to suggest, and whether "Forgot your device?" may stand in. The sign-in pages
 * ask it; they decide nothing themselves. Built once (src/nyckel.ts).
 */
export class SecondFactorPolicy {
  constructor(
    private readonly engine: PolicyEngine,
    private readonly remembered: Pick<RememberedBrowsers, 'recognise'>,
    private readonly findUser: (id: string) => Promise<User | null | undefined>,
  ) {}

  /** The client's settings (methods, remember days, fallbacks). */
  of(clientId: string): FactorPolicy {
    return this.engine.policy(clientId);
  }

  /** Whether this sign-in needs a second factor: the client requires one, or the request asks for it (step-up). */
  needed(clientId: string, params: Record<string, unknown>): { needed: boolean; stepUp: boolean } {
    const stepUp = requestsSecondFactor(params);
    return { needed: stepUp || this.of(clientId).required, stepUp };
  }

  /** Whether a remembered browser may stand in for the second factor (never for step-up). */
  async rememberedBrowser(ctx: Context, user: User, clientId: string, stepUp: boolean): Promise<boolean> {
    return !stepUp && this.of(clientId).rememberDays > 0 && this.remembered.recognise(ctx, user);
  }

  /** After the password (or an existing session) of `user`: finish, ask for a second factor, or refuse. */
  async afterFirstStep(ctx: Context, user: User, clientId: string, params: Record<string, unknown>): Promise<FirstStepDecision> {
    const { needed, stepUp } = this.needed(clientId, params);
    if (!needed) return { next: 'finish', remembered: false };
    if (await this.rememberedBrowser(ctx, user, clientId, stepUp)) return { next: 'finish', remembered: true };
    // A user without a usable method is led to enrol one at /mfa when the client allows it.
    const offer = await this.offeredAs(user, clientId);
    if (offer.modules.length > 0) return { next: 'second-factor', offer };
    if ((await this.enrollableAtSignIn(user, clientId)).length > 0) return { next: 'second-factor' };
    return { next: 'unavailable' };
  }

  /**
   * After "Forgot your password?" (the new password waits in the sign-in): a reset never removes the
   * second factor. A user who holds a method other than email (the reset code came by mail, so mail
   * proves nothing more) must pass it before the new password counts, whatever the client requires.
   */
  async afterPasswordReset(user: User, clientId: string, params: Record<string, unknown>): Promise<FirstStepDecision> {
    if (!this.needed(clientId, params).needed && !(await this.resetNeedsSecondFactor(user))) return { next: 'finish', remembered: false };
    const progress = { pendingPassword: true, verified: [] };
    if ((await this.offered(user, clientId, progress)).length > 0 || (await this.enrollableAtSignIn(user, clientId, progress)).length > 0)
      return { next: 'second-factor' };
    return { next: 'unavailable' };
  }

  /** Whether a reset must be confirmed by a method other than email: the user holds one. */
  async resetNeedsSecondFactor(user: User): Promise<boolean> {
    return (await this.engine.methodsOf(user)).some((m) => m.channel !== 'email');
  }

  /**
   * Whether the factors of a sign-in with a reset password confirm the reset: one of them is not the
   * mail the reset came by ("Forgot your device?" where the client allows it stands in, marked as a fallback).
   */
  confirmsReset(verified: readonly VerifiedFactor[]): boolean {
    return verified.some((v) => v.channel !== 'knowledge' && (v.channel !== 'email' || v.fallback === true));
  }

  /** For oidc-provider's login prompt: does this signed-in session still lack a required second factor? */
  async sessionNeedsSecondFactor(
    ctx: Context,
    session: SessionSignIn | undefined,
    clientId: string | undefined,
    params: Record<string, unknown>,
  ): Promise<boolean> {
    if (!session?.accountId || !clientId || session.acr === acr.mfa) return false;
    const { needed, stepUp } = this.needed(clientId, params);
    if (!needed || (session.acr === acr.fallback && !stepUp)) return false;
    if (stepUp || this.of(clientId).rememberDays === 0) return true;
    const user = await this.findUser(session.accountId);
    return !user || !(await this.remembered.recognise(ctx, user));
  }

  /**
   * The methods this user can use for this client, the user's primary first. `afterReset`: the sign-in
   * carries a reset password, so mail is no second factor for a user who holds another method.
   */
  async offered(user: User, clientId: string, progress: SignInProgress = NOTHING_YET): Promise<FactorModule[]> {
    return (await this.offeredAs(user, clientId, progress)).modules;
  }

  /**
   * `offered`, and what for. No dead ends: a user who has none of the client's methods, but holds
   * another (an address, a phone, an app), proves it is them with that one and may then add one the
   * client accepts (`enrollableAtSignIn`); the login itself still needs the client's method.
   */
  async offeredAs(user: User, clientId: string, progress: SignInProgress = NOTHING_YET): Promise<Offer> {
    // After a reset the code came by mail: for a user with another method, mail proves nothing more.
    const mailProvesNothing = progress.pendingPassword && (await this.resetNeedsSecondFactor(user));
    const usable = (modules: FactorModule[]) => (mailProvesNothing ? modules.filter((m) => m.channel !== 'email') : modules);
    const offered = usable(await this.engine.offered(user, clientId, progress.held));
    if (offered.length > 0 || factorStrength(progress.verified) >= 2 || !this.of(clientId).allowEnrolmentAtLogin)
      return { modules: offered, purpose: 'sign-in' };
    // A method the user may enrol straight away (an address to verify, a first app) needs no proof.
    if ((await this.engine.enrollable(user, clientId, false)).length > 0) return { modules: [], purpose: 'sign-in' };
    if ((await this.engine.enrollable(user, clientId, true)).length === 0) return { modules: [], purpose: 'sign-in' };
    return { modules: usable(await this.engine.methodsOf(user)), purpose: 'proof' };
  }

  /**
   * Methods the user may enrol during this sign-in (none when the client does not allow it); one that
   * creates its credential (an app, a passkey) only once the sign-in has passed a method the user holds.
   */
  async enrollableAtSignIn(user: User, clientId: string, progress: SignInProgress = NOTHING_YET): Promise<FactorModule[]> {
    if (!this.of(clientId).allowEnrolmentAtLogin) return [];
    return this.engine.enrollable(user, clientId, factorStrength(progress.verified) >= 2);
  }

  /**
   * Whether the factors include one this client accepts (its methods and their backup codes, a
   * passwordless method, the fallback it allows). A method proved elsewhere only opens the way to add one.
   */
  acceptsFactors(clientId: string, verified: readonly VerifiedFactor[]): boolean {
    const accepted = new Set<string>([...this.engine.usableMethods(clientId).map((m) => m.id), ...this.of(clientId).passwordless]);
    return verified.some((v) => v.channel !== 'knowledge' && (v.fallback === true || accepted.has(v.factor)));
  }

  /** Whether the client lets users enrol a method while signing in. */
  enrolmentAtSignInAllowed(clientId: string): boolean {
    return this.of(clientId).allowEnrolmentAtLogin;
  }

  /**
   * Recovery codes come with the first second factor a user enrols when the recovery-code module is
   * registered and the factor is an app or a passkey (which can be lost with its device), or, at a
   * sign-in (`clientId`), the client allows recovery codes. Returns the module that issues them, or
   * undefined when none are due. The account pages ask without a client.
   */
  recoveryCodesOnEnrolment(clientId: string | undefined, enrolled: FactorModule): RecoveryCodeModule | undefined {
    const recovery = this.engine.modules.get('recovery-code');
    if (!isRecoveryCodeModule(recovery)) return undefined;
    const losable = ['app', 'device'].includes(enrolled.channel);
    if (!losable && (clientId === undefined || !this.of(clientId).methods.includes('recovery-code'))) return undefined;
    return recovery;
  }

  /**
   * The last-method guard of the account pages: a method may be removed unless it is the user's last
   * (`methodsHeld` counts addresses, numbers and enrolments that pass a second factor) while the
   * installation or some client requires a second factor.
   */
  mayRemoveMethod(methodsHeld: number): boolean {
    return methodsHeld > 1 || !this.engine.secondFactorRequiredSomewhere();
  }

  /** For a restricted authenticator (SMS, NIST 800-63B): the stronger methods among those offered. */
  strongerThan(module: FactorModule, offered: readonly FactorModule[]): FactorModule[] {
    if (!module.restricted) return [];
    return offered.filter((m) => !m.restricted && ['app', 'device', 'eid'].includes(m.channel));
  }

  /**
   * "Forgot your device?": the module that sends the fallback code, when the client allows it and the
   * request can be satisfied by it. A step-up asks for the second-factor class, which a fallback login
   * (acr mfa-fallback) never has: offering it there would only lead back to the same request.
   */
  forgotDeviceFallback(clientId: string, params: Record<string, unknown>): FactorModule | undefined {
    if (!this.forgotDeviceOffered(clientId, params)) return undefined;
    return this.engine.modules.get(FORGOT_DEVICE_FACTOR);
  }

  /** Whether this sign-in offers the fallback at all (a link on every second-factor page). */
  forgotDeviceOffered(clientId: string, params: Record<string, unknown>): boolean {
    return this.of(clientId).forgotDeviceEmail && !requestsSecondFactor(params);
  }

  /** The method that may be the whole sign-in instead of the password, when the client allows one. */
  passwordlessMethod(clientId: string): PasskeyModule | undefined {
    return this.of(clientId)
      .passwordless.map((id) => this.engine.modules.get(id))
      .find(isPasskeyModule);
  }
}

/** The fallback of "Forgot your device?" is a code to one of the user's verified addresses. */
const FORGOT_DEVICE_FACTOR: FactorId = 'email-code';
