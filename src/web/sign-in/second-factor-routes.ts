import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { z } from 'zod';
import type { Accounts } from '../../accounts/accounts.ts';
import type { AuditLog } from '../../accounts/audit.ts';
import { ACCOUNT_CLIENT_ID, factorIds, type FactorId } from '../../clients/clients-file.ts';
import { LOST_DEVICE_PATH } from '../../account/sign-in.ts';
import { NyckelError } from '../../errors.ts';
import type { ChallengeContext, FactorModule, VerifyOutcome } from '../../factors/contract.ts';

type VerifiedOutcome = Extract<VerifyOutcome, { status: 'verified' }>;
import type { FactorEngine } from '../../factors/engine.ts';
import { factorStrength, type SignIns, type VerifiedFactor } from '../../factors/sign-ins.ts';
import type { SignInFlow } from './sign-in-flow.ts';
import type { Metrics } from '../../observability/metrics.ts';
import type { Signals } from '../../storage/signals.ts';
import type { RememberedBrowsers } from '../../factors/remember.ts';
import type { ChallengeStore } from '../../factors/shared/challenges.ts';
import { isRecoveryCodeModule } from '../../factors/recovery-code/index.ts';
import type { User } from '../../generated/prisma/client.ts';
import { hasMessage, translator } from '../../i18n/i18n.ts';
import { assertCsrf, csrfProtection, csrfSeed } from '../../security/csrf.ts';
import type { SecretBox } from '../../security/crypto.ts';
import { formBody, readForm } from '../shared/forms.ts';
import { forgotDeviceRoutes } from './forgot-device-routes.ts';
import { pollView } from '../shared/poll-view.ts';
import { scriptJson } from '../shared/script-json.ts';
import type { AccountNotifier } from '../../account/notify.ts';
import type { PageRenderer } from '../../server/pages.ts';
import { passkeyLoginRoutes } from './passwordless-routes.ts';
import { qrDataUrl, qrSvgDataUrl } from '../shared/qr.ts';
import { statusWhenChanged } from '../shared/long-poll.ts';
import { sendRefusalStatus, sendRefusedError } from '../shared/send-refusal.ts';

type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

export interface FactorRouteDependencies {
  /** Wakes a waiting status request when its challenge is answered (on any node). */
  signals: Signals;
  provider: () => Provider;
  engine: FactorEngine;
  /** The sign-in records, bound to one user each. */
  signIns: SignIns;
  /** Binds sign-ins to their user and finishes them (the one place an interaction ends with a login). */
  flow: SignInFlow;
  accounts: Accounts;
  audit: AuditLog;
  remembered: RememberedBrowsers;
  challenges: ChallengeStore;
  pages: PageRenderer;
  box: SecretBox;
  issuer: string;
  maxBodyBytes: number;
  /** Mails the user about a "Forgot your device?" sign-in. */
  notifier?: AccountNotifier;
  /** The state of a queued message, to tell the user when it could not be sent yet. */
  deliveryState: (id: string) => Promise<{ status: 'queued' | 'sent' | 'failed'; lastError: string | null } | undefined>;
  /** Sign-ins completed with a second factor, and failed answers. */
  metrics: Metrics;
}

const REMEMBER_CHOICE = 'nyckel.remember-choice';
const csrfField = z.string().max(200);
const startForm = z.object({
  _csrf: csrfField,
  target: z.string().max(100).optional(),
  typed: z.string().max(320).optional(),
  remember: z.literal('yes').optional(),
  label: z.string().max(60).optional(),
});
const codeForm = z.object({ _csrf: csrfField, code: z.string().max(64).default(''), remember: z.literal('yes').optional() });
/** Completing an enrolment: the code, and for an app the name the user gives it ("My phone"). */
const enrolCodeForm = codeForm.extend({ label: z.string().max(60).optional() });
/** A passkey's answer: the JSON the page's script wrote (the module checks its shape), the remember choice, a name. */
const passkeyForm = z.object({
  _csrf: csrfField,
  credential: z.string().max(32_768).default(''),
  remember: z.literal('yes').optional(),
  label: z.string().max(60).optional(),
});
const plainForm = z.object({ _csrf: csrfField });
const factorParam = z.enum(factorIds);

/**
 * The second step of signing in, for every factor module: choose a method, start its challenge,
 * answer it (code, or link opened in the same browser), and finish the login once.
 */
export function factorRoutes(deps: FactorRouteDependencies) {
  const { engine, pages, audit, metrics } = deps;
  const router = new Router({ prefix: '/interaction/:uid' });
  const form = formBody(deps.maxBodyBytes);
  router.use(csrfProtection(deps.box));
  router.use(async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      if (!(error instanceof SignInEnded)) throw error;
      ctx.status = 303;
      ctx.redirect(error.returnTo);
    }
  });
  // Before the routes of /mfa/:factor, which would take "forgot" for a factor's name.
  forgotDeviceRoutes(router, { signIn, base, failureMessage, afterVerified }, { engine, challenges: deps.challenges, pages, audit, notifier: deps.notifier, form });

  interface SignIn {
    details: Details;
    user: User;
    verified: VerifiedFactor[];
    ctx: ChallengeContext;
  }

  async function signIn(ctx: Context): Promise<SignIn> {
    const details = await deps.provider().interactionDetails(ctx.req, ctx.res);
    if (details.uid !== ctx.params.uid) throw new NyckelError('session_expired');
    const attempt = await deps.signIns.load(details.uid);
    if (!attempt || attempt.expiresAt <= new Date()) throw new NyckelError('session_expired');
    // Ended already (the same answer sent twice, a second tab): back to the relying party with its login.
    if (attempt.completedAt) throw new SignInEnded(details.returnTo);
    const user = await deps.accounts.findById(attempt.userId);
    if (!user || user.status !== 'active') throw new NyckelError('session_expired');
    const clientId = String(details.params.client_id);
    return {
      details,
      user,
      verified: attempt.verified,
      ctx: {
        user,
        uid: details.uid,
        clientId,
        clientName: pages.clientName(clientId) ?? clientId,
        locale: pages.localeOf(ctx, details.params.ui_locales as string | undefined),
        ip: ctx.ip,
        userAgent: ctx.get('user-agent'),
        browserHash: deps.challenges.browserHash(csrfSeed(ctx)),
        issuer: deps.issuer,
      },
    };
  }

  async function allowedModule(state: SignIn, id: string): Promise<FactorModule> {
    const parsed = factorParam.safeParse(id);
    if (!parsed.success) throw new NyckelError('not_found');
    const offered = await engine.offered(state.user, state.ctx.clientId);
    const module = offered.find((m) => m.id === parsed.data);
    if (!module) throw new NyckelError('not_found');
    return module;
  }

  function base(ctx: Context, state: SignIn) {
    return {
      locale: state.ctx.locale,
      clientName: state.ctx.clientName,
      uid: state.details.uid,
      csrfToken: ctx.state.csrfToken as string,
      forgotDevice: engine.policy(state.ctx.clientId).forgotDeviceEmail,
      // Signing in to the account pages without the device: the way to "delete all my devices".
      lostDeviceHref: state.ctx.clientId === ACCOUNT_CLIENT_ID ? LOST_DEVICE_PATH : undefined,
    };
  }

  function failureMessage(state: SignIn, outcome: Extract<VerifyOutcome, { status: 'failed' }>, module?: FactorModule): string {
    const t = translator(state.ctx.locale);
    const minutes = Math.max(1, Math.ceil((outcome.retryAfterSeconds ?? 60) / 60));
    // Nothing is sent for an app or a recovery code: "send a new one" would not make sense.
    const reason =
      module?.kind === 'code' && (outcome.reason === 'used' || outcome.reason === 'expired')
        ? `${outcome.reason}_code`
        : module?.kind === 'webauthn' && hasMessage(state.ctx.locale, `factor_errors.passkey_${outcome.reason}`)
          ? `passkey_${outcome.reason}`
          : module && module.kind !== 'code' && hasMessage(state.ctx.locale, `factor_errors.${module.id}_${outcome.reason}`)
            ? `${module.id}_${outcome.reason}`
            : outcome.reason;
    return t(`factor_errors.${reason}`, { minutes, seconds: outcome.retryAfterSeconds ?? 0, left: outcome.attemptsLeft ?? 0 });
  }

  /** Finishes the login if the sign-in's factors satisfy the policy (SignInFlow.finish), else back to the methods. */
  async function finish(ctx: Context, state: SignIn, method: string) {
    // Chosen on the start page (a cookie), or with the code of a factor that has no start page.
    const rememberChoice = (ctx.state.rememberChoice as string | undefined) ?? ctx.cookies.get(REMEMBER_CHOICE);
    const result = await deps.flow.finish(ctx, state.details, { userId: state.user.id, method, rememberChoice });
    ctx.cookies.set(REMEMBER_CHOICE, null, { path: `/interaction/${state.details.uid}` });
    if (result === 'unsatisfied') {
      ctx.status = 303;
      ctx.redirect(`/interaction/${state.details.uid}/mfa`);
    }
  }

  /** Audits and counts a wrong (or refused) answer to a factor during sign-in. */
  async function recordFailure(ctx: Context, state: SignIn, module: FactorModule, outcome: Extract<VerifyOutcome, { status: 'failed' }>) {
    metrics.login(outcome.reason === 'locked' || outcome.reason === 'rate_limited' ? outcome.reason : 'factor_failed', module.id);
    await audit.record('factor.failed', { userId: state.user.id, data: { factor: module.id, reason: outcome.reason }, ip: ctx.ip, userAgent: ctx.get('user-agent') });
  }

  /**
   * Audits and records a verified factor for the user it was verified for; true when the sign-in now
   * has two independent factors. A repeated answer (a double submit) records nothing new.
   */
  async function recordVerified(ctx: Context, state: SignIn, module: FactorModule, outcome: VerifiedOutcome, options: { fallback?: boolean } = {}): Promise<boolean> {
    if (!outcome.repeated) {
      await audit.record('factor.verified', { userId: state.user.id, data: { factor: module.id, ...options }, ip: ctx.ip, userAgent: ctx.get('user-agent') });
    }
    const factor: VerifiedFactor = { factor: module.id, channel: module.channel, amr: [...outcome.amr], at: new Date().toISOString(), userId: state.user.id, ...(options.fallback ? { fallback: true } : {}) };
    state.verified = await deps.signIns.record(state.details.uid, factor);
    return factorStrength(state.verified) >= 2;
  }

  async function afterVerified(ctx: Context, state: SignIn, module: FactorModule, outcome: VerifiedOutcome, options: { fallback?: boolean } = {}) {
    const satisfied = await recordVerified(ctx, state, module, outcome, options);
    const { notice } = outcome;
    // Something to tell first (e.g. how many recovery codes are left): a page that continues on a click.
    if (satisfied && notice) {
      const t = translator(state.ctx.locale);
      const link = hasMessage(state.ctx.locale, `${notice.key}_link`) ? { href: '/account', text: t(`${notice.key}_link`) } : undefined;
      return pages.html(ctx, 'mfa-notice', state.ctx.locale, { ...base(ctx, state), title: t(`${notice.key}_title`), message: t(notice.key, notice.values), link });
    }
    if (satisfied) return finish(ctx, state, module.id);
    ctx.status = 303;
    return ctx.redirect(`/interaction/${state.details.uid}/mfa`);
  }

  router.get('/mfa', async (ctx) => {
    const state = await signIn(ctx);
    const offered = await engine.offered(state.user, state.ctx.clientId);
    if (offered.length === 0) return ctx.redirect(`/interaction/${state.details.uid}/mfa/enrol`);
    // One method, or one besides backups (recovery codes): straight to it ("Use another method" lists all).
    const main = offered.filter((m) => m.channel !== 'backup');
    const only = offered.length === 1 ? offered[0] : main.length === 1 ? main[0] : undefined;
    if (only && !ctx.query.choose) return ctx.redirect(`/interaction/${state.details.uid}/mfa/${only.id}`);
    const t = translator(state.ctx.locale);
    pages.html(ctx, 'mfa-choose', state.ctx.locale, {
      ...base(ctx, state),
      methods: offered.map((m) => ({ id: m.id, name: t(`factors.${m.id}.name`), hint: t(`factors.${m.id}.hint`) })),
    });
  });

  /** Enrolment during sign-in, for a user with no usable method (when the client allows it). */
  async function enrollableModule(state: SignIn, id: string): Promise<FactorModule> {
    if (!engine.policy(state.ctx.clientId).allowEnrolmentAtLogin) throw new NyckelError('not_found');
    const module = (await engine.enrollable(state.user, state.ctx.clientId)).find((m) => m.id === id);
    if (!module) throw new NyckelError('not_found');
    return module;
  }

  router.get('/mfa/enrol', async (ctx) => {
    const state = await signIn(ctx);
    if (!engine.policy(state.ctx.clientId).allowEnrolmentAtLogin) throw new NyckelError('not_found');
    const modules = await engine.enrollable(state.user, state.ctx.clientId);
    const t = translator(state.ctx.locale);
    const options = await Promise.all(
      modules.map(async (m) => ({ id: m.id, kind: m.kind, name: t(`factors.${m.id}.name`), targets: await m.enrol.targets(state.user) })),
    );
    pages.html(ctx, 'mfa-enrol', state.ctx.locale, { ...base(ctx, state), options });
  });

  router.post('/mfa/enrol/:factor/start', form, async (ctx) => {
    const state = await signIn(ctx);
    const input = readForm(ctx, startForm);
    assertCsrf(ctx, input._csrf);
    const module = await enrollableModule(state, ctx.params.factor);
    if (module.kind === 'poll') return startPoll(ctx, state, module, true);
    if (module.kind === 'webauthn') return renderPasskey(ctx, state, module, { enrolling: true });
    const outcome = await module.enrol.begin(state.ctx, { targetId: input.target ?? '', label: input.label });
    if (outcome.status === 'failed') throw sendRefusedError(outcome) ?? new NyckelError('invalid_input');
    ctx.status = 303;
    ctx.redirect(`/interaction/${state.details.uid}/mfa/enrol/${module.id}/challenge/${outcome.challengeId}`);
  });

  router.get('/mfa/enrol/:factor/challenge/:challengeId', async (ctx) => {
    const state = await signIn(ctx);
    const module = await enrollableModule(state, ctx.params.factor);
    if (module.enrol.setup) return renderSetup(ctx, state, module, ctx.params.challengeId);
    await renderChallenge(ctx, state, module, ctx.params.challengeId, { enrolling: true });
  });

  /** The enrolment page of a factor enrolled by scanning: QR code, the key as text, a name, the code. */
  async function renderSetup(ctx: Context, state: SignIn, module: FactorModule, challengeId: string, extra: { error?: string; status?: number; label?: string } = {}) {
    const setup = await module.enrol.setup!(state.ctx, challengeId);
    if (!setup) throw new NyckelError('session_expired');
    pages.html(
      ctx,
      'mfa-enrol-app',
      state.ctx.locale,
      {
        ...base(ctx, state),
        factor: module.id,
        challengePath: `/interaction/${state.details.uid}/mfa/enrol/${module.id}/challenge/${challengeId}`,
        qr: await qrDataUrl(setup.uri),
        uri: setup.uri,
        // Grouped by four for typing into an app by hand.
        secretGroups: setup.secret.match(/.{1,4}/g)!.join(' '),
        label: extra.label,
        error: extra.error,
      },
      extra.status ?? 200,
    );
  }

  /**
   * Recovery codes come with the first second factor a user enrols (when the recovery-code module is
   * registered and the client allows it, or the factor is an app or a passkey, which can be lost with
   * its device): shown once, here.
   */
  async function newRecoveryCodes(state: SignIn, module: FactorModule): Promise<string[] | undefined> {
    const recovery = engine.modules.get('recovery-code');
    if (!isRecoveryCodeModule(recovery)) return undefined;
    if (!['app', 'device'].includes(module.channel) && !engine.policy(state.ctx.clientId).methods.includes('recovery-code')) return undefined;
    return recovery.ensure(state.user.id);
  }

  router.post('/mfa/enrol/:factor/challenge/:challengeId/verify', form, async (ctx) => {
    const state = await signIn(ctx);
    const input = readForm(ctx, enrolCodeForm);
    assertCsrf(ctx, input._csrf);
    const module = await enrollableModule(state, ctx.params.factor);
    const credential = module.kind === 'webauthn' ? passkeyCredential(ctx) : undefined;
    if (credential === null) return renderPasskey(ctx, state, module, { enrolling: true, error: translator(state.ctx.locale)('factor_errors.passkey_format'), status: 400, label: input.label });
    const outcome = await module.enrol.complete(state.ctx, { challengeId: ctx.params.challengeId, code: input.code.replace(/\s+/g, ''), credential, label: input.label });
    if (outcome.status === 'verified') {
      await audit.record('factor.enrolled', { userId: state.user.id, data: { factor: module.id }, ip: ctx.ip, userAgent: ctx.get('user-agent') });
      await engine.makePrimary(state.user.id, module.id);
      const codes = await newRecoveryCodes(state, module);
      if (!codes) return afterVerified(ctx, state, module, outcome);
      await audit.record('recovery-codes.generated', { userId: state.user.id, data: { count: codes.length }, ip: ctx.ip, userAgent: ctx.get('user-agent') });
      // Recorded now; the page of codes continues the sign-in (POST /mfa/continue) on a click.
      await recordVerified(ctx, state, module, outcome);
      const text = `${translator(state.ctx.locale)('recovery.file_heading', { user: state.user.email })}\n\n${codes.join('\n')}\n`;
      return pages.html(ctx, 'mfa-recovery-codes', state.ctx.locale, {
        ...base(ctx, state),
        codes,
        download: `data:text/plain;charset=utf-8,${encodeURIComponent(text)}`,
      });
    }
    if (module.kind === 'poll') {
      // Not confirmed (yet): the page again, with what BankID says.
      const status = await pollStatus(ctx, state, module, ctx.params.challengeId);
      const open = status.status === 'pending';
      return renderPoll(ctx, state, module, { enrolling: true, challengeId: open ? ctx.params.challengeId : undefined, qr: status.qr, message: status.message, error: open ? undefined : status.message, status: open ? 200 : 400 });
    }
    if (outcome.status === 'failed' && module.kind === 'webauthn') {
      if (outcome.reason === 'locked' && outcome.retryAfterSeconds) ctx.set('Retry-After', String(outcome.retryAfterSeconds));
      return renderPasskey(ctx, state, module, { enrolling: true, error: failureMessage(state, outcome, module), status: passkeyFailureStatus(outcome), label: input.label });
    }
    if (outcome.status === 'failed' && module.enrol.setup) {
      if (outcome.reason === 'locked' && outcome.retryAfterSeconds) ctx.set('Retry-After', String(outcome.retryAfterSeconds));
      return renderSetup(ctx, state, module, ctx.params.challengeId, {
        error: failureMessage(state, outcome, module),
        status: outcome.reason === 'locked' ? 429 : outcome.reason === 'wrong_code' ? 401 : 400,
        label: input.label,
      });
    }
    if (outcome.status === 'failed') {
      return renderChallenge(ctx, state, module, ctx.params.challengeId, {
        enrolling: true,
        error: failureMessage(state, outcome),
        status: outcome.reason === 'locked' ? 429 : 401,
      });
    }
  });

  /** For a restricted authenticator (SMS, NIST 800-63B): the stronger methods this user could use instead. */
  function strongerMethods(state: SignIn, module: FactorModule, offered: FactorModule[]) {
    if (!module.restricted) return [];
    const t = translator(state.ctx.locale);
    return offered
      .filter((m) => !m.restricted && ['app', 'device', 'eid'].includes(m.channel))
      .map((m) => ({ id: m.id, name: t(`factors.${m.id}.name`) }));
  }

  async function renderStart(ctx: Context, state: SignIn, module: FactorModule, error?: string, status = 200) {
    const targets = await module.targets(state.user);
    const policy = engine.policy(state.ctx.clientId);
    const offered = await engine.offered(state.user, state.ctx.clientId);
    pages.html(
      ctx,
      'mfa-start',
      state.ctx.locale,
      {
        ...base(ctx, state),
        factor: module.id,
        kind: module.kind,
        channel: module.channel,
        stronger: strongerMethods(state, module, offered),
        targets,
        rememberDays: policy.rememberDays,
        otherMethods: offered.length > 1,
        error,
      },
      status,
    );
  }

  router.get('/mfa/:factor', async (ctx) => {
    const state = await signIn(ctx);
    const module = await allowedModule(state, ctx.params.factor);
    if (module.kind === 'code') {
      // Nothing to send and nowhere to choose: straight to the code page.
      const outcome = await module.start(state.ctx, {});
      if (outcome.status === 'failed') throw new NyckelError('not_found');
      ctx.status = 303;
      return ctx.redirect(`/interaction/${state.details.uid}/mfa/${module.id}/challenge/${outcome.challengeId}`);
    }
    if (module.kind === 'poll') return startPoll(ctx, state, module, false);
    if (module.kind === 'webauthn') return renderPasskey(ctx, state, module);
    await renderStart(ctx, state, module);
  });

  router.post('/mfa/:factor/start', form, async (ctx) => {
    const state = await signIn(ctx);
    const input = readForm(ctx, startForm);
    assertCsrf(ctx, input._csrf);
    const module = await allowedModule(state, ctx.params.factor);
    const typed = input.typed?.trim();
    if (!input.target && !typed) {
      return renderStart(ctx, state, module, translator(state.ctx.locale)('mfa.choose_target'), 400);
    }
    ctx.cookies.set(REMEMBER_CHOICE, input.remember ?? 'no', { httpOnly: true, sameSite: 'lax', path: `/interaction/${state.details.uid}` });
    const outcome = await module.start(state.ctx, typed ? { typed } : { targetId: input.target });
    if (outcome.status === 'failed') {
      const status = sendRefusalStatus(ctx, outcome);
      return renderStart(ctx, state, module, failureMessage(state, outcome, module), status);
    }
    ctx.status = 303;
    ctx.redirect(`/interaction/${state.details.uid}/mfa/${module.id}/challenge/${outcome.challengeId}`);
  });

  /**
   * The page of a passkey ceremony (sign-in, or enrolment with a name field). Every showing starts a
   * fresh single-use challenge whose options the page's script (passkey.js) hands to the browser.
   */
  async function renderPasskey(ctx: Context, state: SignIn, module: FactorModule, extra: { enrolling?: boolean; error?: string; status?: number; label?: string } = {}) {
    const outcome = extra.enrolling ? await module.enrol.begin(state.ctx, {}) : await module.start(state.ctx, {});
    if (outcome.status === 'failed') throw new NyckelError('not_found');
    const offered = extra.enrolling ? [] : await engine.offered(state.user, state.ctx.clientId);
    pages.html(
      ctx,
      'mfa-passkey',
      state.ctx.locale,
      {
        ...base(ctx, state),
        factor: module.id,
        enrolling: extra.enrolling,
        action: `/interaction/${state.details.uid}/mfa/${extra.enrolling ? 'enrol/' : ''}${module.id}/challenge/${outcome.challengeId}/verify`,
        // Inside <script type="application/json">: nothing in it may end the element.
        optionsJson: scriptJson(outcome.browser),
        rememberDays: extra.enrolling ? 0 : engine.policy(state.ctx.clientId).rememberDays,
        otherMethods: offered.length > 1,
        label: extra.label,
        error: extra.error,
      },
      extra.status ?? 200,
    );
  }

  /** The posted passkey answer as parsed JSON; null when missing or not JSON (no script, or garbage). */
  function passkeyCredential(ctx: Context): unknown {
    const { credential } = readForm(ctx, passkeyForm);
    if (!credential) return null;
    try {
      return JSON.parse(credential) as unknown;
    } catch {
      return null;
    }
  }

  const passkeyFailureStatus = (outcome: Extract<VerifyOutcome, { status: 'failed' }>) =>
    outcome.reason === 'locked' ? 429 : outcome.reason === 'wrong_code' ? 401 : 400;

  async function verifyPasskey(ctx: Context, state: SignIn, module: FactorModule) {
    const input = readForm(ctx, passkeyForm);
    // As with an app's code: "don't ask again" is chosen on the page that answers.
    ctx.state.rememberChoice = input.remember ?? 'no';
    ctx.cookies.set(REMEMBER_CHOICE, ctx.state.rememberChoice, { httpOnly: true, sameSite: 'lax', path: `/interaction/${state.details.uid}` });
    const credential = passkeyCredential(ctx);
    if (credential === null) return renderPasskey(ctx, state, module, { error: translator(state.ctx.locale)('factor_errors.passkey_format'), status: 400 });
    const outcome = await module.verify(state.ctx, { challengeId: ctx.params.challengeId, credential });
    if (outcome.status === 'verified') return afterVerified(ctx, state, module, outcome);
    if (outcome.status === 'pending') return renderPasskey(ctx, state, module);
    await recordFailure(ctx, state, module, outcome);
    if (outcome.reason === 'locked' && outcome.retryAfterSeconds) ctx.set('Retry-After', String(outcome.retryAfterSeconds));
    return renderPasskey(ctx, state, module, { error: failureMessage(state, outcome, module), status: passkeyFailureStatus(outcome) });
  }

  async function renderChallenge(
    ctx: Context,
    state: SignIn,
    module: FactorModule,
    challengeId: string,
    extra: { error?: string; notice?: string; status?: number; enrolling?: boolean } = {},
  ) {
    const offered = await engine.offered(state.user, state.ctx.clientId);
    const policy = engine.policy(state.ctx.clientId);
    if (module.kind === 'webauthn') return renderPasskey(ctx, state, module, extra);
    if (module.kind === 'code' && !extra.enrolling) {
      // The user reads the code from something they hold: no challenge row, no target, no resend.
      // A module with a `status` (app + QR) gives the QR code the app scans to compute the code.
      const shown = module.status ? await module.status(state.ctx, challengeId) : undefined;
      const qrText = shown?.status === 'pending' ? shown.qr : undefined;
      return pages.html(
        ctx,
        'mfa-code',
        state.ctx.locale,
        {
          ...base(ctx, state),
          factor: module.id,
          challengeId,
          challengePath: `/interaction/${state.details.uid}/mfa/${module.id}/challenge/${challengeId}`,
          canResend: false,
          prompt: translator(state.ctx.locale)(`factors.${module.id}.prompt`),
          alphanumeric: module.channel === 'backup',
          qr: qrText ? await qrSvgDataUrl(qrText) : undefined,
          qrText,
          // No start page for these: "don't ask again" is chosen with the code.
          rememberDays: policy.rememberDays,
          otherMethods: offered.length > 1,
          forgotDevice: policy.forgotDeviceEmail,
          error: extra.error,
          notice: extra.notice,
        },
        extra.status ?? 200,
      );
    }
    const challenge = await deps.challenges.find(state.ctx, challengeId, [extra.enrolling ? `${module.channel}-enrolment` : module.id]);
    if (!challenge) throw new NyckelError('session_expired');
    const minutes = Math.max(1, Math.round((challenge.expiresAt.getTime() - challenge.createdAt.getTime()) / 60000));
    const deliveryId = (challenge.data as { deliveryId?: string }).deliveryId;
    const delivery = deliveryId ? await deps.deliveryState(deliveryId) : undefined;
    const t = translator(state.ctx.locale);
    // A text sent after the answer (to a typed number) that the provider refused.
    const deliveryProblem = (challenge.data as { deliveryFailed?: boolean }).deliveryFailed
      ? t('factor_errors.send_failed')
      : delivery?.status === 'failed'
        ? t('factor_errors.delivery_failed')
        : delivery?.status === 'queued' && delivery.lastError
          ? t('mfa.delivery_retrying')
          : undefined;
    pages.html(
      ctx,
      module.kind === 'link-to-target' && !extra.enrolling ? 'mfa-wait' : 'mfa-code',
      state.ctx.locale,
      {
        ...base(ctx, state),
        factor: module.id,
        challengeId,
        challengePath: `/interaction/${state.details.uid}/mfa/${extra.enrolling ? 'enrol/' : ''}${module.id}/challenge/${challengeId}`,
        canResend: !extra.enrolling,
        enrolling: extra.enrolling,
        maskedTarget: challenge.target ? module.maskTarget(challenge.target) : undefined,
        codeSentKey: hasMessage(state.ctx.locale, `factors.${module.id}.code_sent`) ? `factors.${module.id}.code_sent` : 'mfa.code_sent',
        stronger: extra.enrolling ? [] : strongerMethods(state, module, offered),
        minutes,
        otherMethods: offered.length > 1,
        forgotDevice: policy.forgotDeviceEmail,
        error: extra.error ?? deliveryProblem,
        notice: extra.notice,
      },
      extra.status ?? 200,
    );
  }

  router.get('/mfa/:factor/challenge/:challengeId', async (ctx) => {
    const state = await signIn(ctx);
    const module = await allowedModule(state, ctx.params.factor);
    if (module.kind === 'poll') return pollChallenge(ctx, state, module, ctx.params.challengeId);
    const status = module.status ? await module.status(state.ctx, ctx.params.challengeId) : { status: 'pending' as const };
    if (status.status === 'verified' && factorStrength(state.verified) >= 2) return finish(ctx, state, module.id);
    // After "Resend code" (which redirects here with ?resent=1), say that a new code is on its way.
    const notice = ctx.query.resent === '1' ? translator(state.ctx.locale)('mfa.resent') : undefined;
    await renderChallenge(ctx, state, module, ctx.params.challengeId, { notice });
  });

  router.get('/mfa/:factor/challenge/:challengeId/status', async (ctx) => {
    const state = await signIn(ctx);
    const module = await allowedModule(state, ctx.params.factor);
    ctx.set('Cache-Control', 'no-store');
    const { challengeId } = ctx.params;
    const read = async (): Promise<{ status: string }> => {
      if (module.kind === 'poll') return pollStatus(ctx, state, module, challengeId);
      const status = module.status ? await module.status(state.ctx, challengeId) : { status: 'pending' as const };
      return { status: status.status === 'verified' ? 'verified' : 'pending' };
    };
    ctx.body = await statusWhenChanged(ctx, deps.signals, challengeId, read, (body) => body.status === 'pending');
  });

  /**
   * Kind `poll` (BankID): something outside the browser confirms. The page polls `status` (the
   * module's state, the message for its hint in the page's language, and the QR code to show) and,
   * once verified, comes back to the challenge page, which records the factor once and finishes.
   */
  async function startPoll(ctx: Context, state: SignIn, module: FactorModule, enrolling: boolean) {
    const outcome = enrolling ? await module.enrol.begin(state.ctx, {}) : await module.start(state.ctx, {});
    if (outcome.status === 'failed') {
      if (outcome.retryAfterSeconds) ctx.set('Retry-After', String(outcome.retryAfterSeconds));
      const status = outcome.reason === 'provider_unavailable' ? 503 : outcome.reason === 'rate_limited' ? 429 : 400;
      return renderPoll(ctx, state, module, { enrolling, error: failureMessage(state, outcome, module), status });
    }
    const status = await pollStatus(ctx, state, module, outcome.challengeId);
    // The link that opens the app on this device (BankID's autostart link), when the module gives one.
    const launchUrl = typeof outcome.browser?.launchUrl === 'string' ? outcome.browser.launchUrl : undefined;
    return renderPoll(ctx, state, module, { enrolling, challengeId: outcome.challengeId, launchUrl, qr: status.qr, message: status.message, number: status.number, expiresIn: status.expiresIn });
  }

  async function pollChallenge(ctx: Context, state: SignIn, module: FactorModule, challengeId: string) {
    const status = await pollStatus(ctx, state, module, challengeId);
    if (status.status === 'verified') {
      // Of parallel requests only one gets `verified` from verify (the order is consumed once).
      const outcome = await module.verify(state.ctx, { challengeId });
      if (outcome.status === 'verified') return afterVerified(ctx, state, module, outcome);
      if (factorStrength(state.verified) >= 2) return finish(ctx, state, module.id);
      ctx.status = 303;
      return ctx.redirect(`/interaction/${state.details.uid}/mfa`);
    }
    if (status.status === 'failed') return renderPoll(ctx, state, module, { enrolling: false, error: status.message, status: 400 });
    return renderPoll(ctx, state, module, { enrolling: false, challengeId, qr: status.qr, message: status.message, number: status.number, expiresIn: status.expiresIn });
  }

  /** What the page of a poll factor shows now; the failure, when failed, in words. */
  function pollStatus(ctx: Context, state: SignIn, module: FactorModule, challengeId: string) {
    return pollView(module, state.ctx, challengeId, ctx.query.mode, (outcome) => failureMessage(state, outcome));
  }

  function renderPoll(
    ctx: Context,
    state: SignIn,
    module: FactorModule,
    view: { enrolling: boolean; challengeId?: string; launchUrl?: string; qr?: string; message?: string; error?: string; status?: number; number?: string; expiresIn?: number },
  ) {
    const prefix = `/interaction/${state.details.uid}/mfa/${view.enrolling ? 'enrol/' : ''}${module.id}`;
    return engine.offered(state.user, state.ctx.clientId).then((offered) =>
      pages.html(
        ctx,
        `mfa-${module.id}`,
        state.ctx.locale,
        {
          ...base(ctx, state),
          factor: module.id,
          enrolling: view.enrolling,
          challengePath: view.challengeId ? `${prefix}/challenge/${view.challengeId}` : undefined,
          launchUrl: view.launchUrl,
          qr: view.qr,
          number: view.number,
          expiresIn: view.expiresIn,
          message: view.message,
          error: view.error,
          againPath: view.enrolling ? `/interaction/${state.details.uid}/mfa/enrol` : prefix,
          otherMethods: !view.enrolling && offered.length > 1,
        },
        view.status ?? 200,
      ),
    );
  }

  /** The user left the page of a poll factor or chose another method (`navigator.sendBeacon`). */
  router.post(['/mfa/:factor/challenge/:challengeId/cancel', '/mfa/enrol/:factor/challenge/:challengeId/cancel'], form, async (ctx) => {
    const state = await signIn(ctx);
    const input = readForm(ctx, plainForm);
    assertCsrf(ctx, input._csrf);
    const parsed = factorParam.safeParse(ctx.params.factor);
    const module = parsed.success ? engine.modules.get(parsed.data) : undefined;
    if (!module?.cancel) throw new NyckelError('not_found');
    await module.cancel(state.ctx, ctx.params.challengeId);
    ctx.status = 204;
  });

  router.get('/mfa/enrol/:factor/challenge/:challengeId/status', async (ctx) => {
    const state = await signIn(ctx);
    const module = await enrollableModule(state, ctx.params.factor);
    if (module.kind !== 'poll') throw new NyckelError('not_found');
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await pollStatus(ctx, state, module, ctx.params.challengeId);
  });

  router.post('/mfa/:factor/challenge/:challengeId/verify', form, async (ctx) => {
    const state = await signIn(ctx);
    const input = readForm(ctx, codeForm);
    assertCsrf(ctx, input._csrf);
    const module = await allowedModule(state, ctx.params.factor);
    if (module.kind === 'webauthn') return verifyPasskey(ctx, state, module);
    const code = input.code.replace(/\s+/g, '');
    // Recovery codes have letters and a dash; every other code is digits.
    if (!(module.channel === 'backup' ? /^[0-9A-Za-z-]{4,20}$/ : /^\d{4,10}$/).test(code)) {
      return renderChallenge(ctx, state, module, ctx.params.challengeId, { error: translator(state.ctx.locale)('factor_errors.format'), status: 400 });
    }
    if (module.kind === 'code') {
      ctx.state.rememberChoice = input.remember ?? 'no';
      // Kept for a notice page that continues the sign-in in a later request.
      ctx.cookies.set(REMEMBER_CHOICE, ctx.state.rememberChoice, { httpOnly: true, sameSite: 'lax', path: `/interaction/${state.details.uid}` });
    }
    const outcome = await module.verify(state.ctx, { challengeId: ctx.params.challengeId, code });
    if (outcome.status === 'verified') return afterVerified(ctx, state, module, outcome);
    if (outcome.status === 'pending') return renderChallenge(ctx, state, module, ctx.params.challengeId);
    await recordFailure(ctx, state, module, outcome);
    if (outcome.retryAfterSeconds && outcome.reason === 'locked') ctx.set('Retry-After', String(outcome.retryAfterSeconds));
    return renderChallenge(ctx, state, module, ctx.params.challengeId, {
      error: failureMessage(state, outcome, module),
      status: outcome.reason === 'locked' ? 429 : outcome.reason === 'wrong_code' ? 401 : 400,
    });
  });

  router.post('/mfa/:factor/challenge/:challengeId/resend', form, async (ctx) => {
    const state = await signIn(ctx);
    const input = readForm(ctx, plainForm);
    assertCsrf(ctx, input._csrf);
    const module = await allowedModule(state, ctx.params.factor);
    const outcome = await module.start(state.ctx, { resendOf: ctx.params.challengeId });
    if (outcome.status === 'failed') {
      return renderChallenge(ctx, state, module, ctx.params.challengeId, { error: failureMessage(state, outcome, module), status: sendRefusalStatus(ctx, outcome) });
    }
    ctx.status = 303;
    ctx.redirect(`/interaction/${state.details.uid}/mfa/${module.id}/challenge/${outcome.challengeId}?resent=1`);
  });

  router.post('/mfa/continue', form, async (ctx) => {
    const state = await signIn(ctx);
    const input = readForm(ctx, plainForm);
    assertCsrf(ctx, input._csrf);
    if (factorStrength(state.verified) < 2) {
      ctx.status = 303;
      return ctx.redirect(`/interaction/${state.details.uid}/mfa`);
    }
    return finish(ctx, state, state.verified.at(-1)!.factor);
  });

  /** The landing page of a sign-in link. A GET never consumes it: mail scanners fetch links. */
  router.get('/link/:challengeId/:token', async (ctx) => {
    const state = await linkSignIn(ctx);
    if (!state) return;
    const module = await allowedModule(state, 'email-link');
    pages.html(ctx, 'link-confirm', state.ctx.locale, { ...base(ctx, state), action: ctx.path, factor: module.id });
  });

  router.post('/link/:challengeId/:token', form, async (ctx) => {
    const state = await linkSignIn(ctx);
    if (!state) return;
    const input = readForm(ctx, plainForm);
    assertCsrf(ctx, input._csrf);
    const module = await allowedModule(state, 'email-link');
    const outcome = await module.verify(state.ctx, { challengeId: ctx.params.challengeId, token: ctx.params.token });
    if (outcome.status === 'failed') {
      await recordFailure(ctx, state, module, outcome);
      return pages.html(ctx, 'message', state.ctx.locale, { ...base(ctx, state), title: translator(state.ctx.locale)('link.failed_title'), message: failureMessage(state, outcome) }, outcome.reason === 'other_browser' ? 403 : 410);
    }
    if (outcome.status !== 'verified') return;
    await recordVerified(ctx, state, module, outcome);
    // The first window notices and continues by itself; this one can continue too.
    pages.html(ctx, 'link-confirmed', state.ctx.locale, { ...base(ctx, state) });
  });

  /** The sign-in a link belongs to, or the "open it in the browser you started in" page. */
  async function linkSignIn(ctx: Context): Promise<SignIn | undefined> {
    try {
      return await signIn(ctx);
    } catch (error) {
      if (!(error instanceof NyckelError || (error as Error).name === 'SessionNotFound')) throw error;
      const locale = pages.localeOf(ctx);
      const t = translator(locale);
      // No sign-in of this browser: a link already used or expired says so; any other is from another browser.
      const spent = await deps.challenges.spent(ctx.params.challengeId);
      if (spent) {
        return void pages.html(ctx, 'message', locale, { title: t('link.failed_title'), message: t(`factor_errors.${spent}`) }, 410);
      }
      pages.html(ctx, 'message', locale, { title: t('link.other_browser_title'), message: t('link.other_browser') }, 400);
      return undefined;
    }
  }

  passkeyLoginRoutes(router, { provider: deps.provider, engine, audit, pages, metrics, flow: deps.flow }, form);
  return router;
}

/** Thrown when a sign-in was already ended: the router sends the browser on to the relying party. */
class SignInEnded extends Error {
  constructor(readonly returnTo: string) {
    super('sign-in already ended');
  }
}
