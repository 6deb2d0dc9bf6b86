import type { FailureLock } from '../factors/shared/failure-lock.ts';
import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { Accounts, Locale } from '../accounts/accounts.ts';
import type { AuditLog } from '../accounts/audit.ts';
import { checkPassword } from '../accounts/password-policy.ts';
import type { ClientDirectory } from '../clients/directory.ts';
import type { FactorId } from '../clients/clients-file.ts';
import type { Settings } from '../config/settings.ts';
import { NyckelError } from '../errors.ts';
import type { ChallengeContext, FactorModule, VerifyOutcome } from '../factors/contract.ts';
import type { FactorEngine } from '../factors/engine.ts';
import type { RememberedBrowsers } from '../factors/remember.ts';
import { isRecoveryCodeModule } from '../factors/recovery-code/index.ts';
import type { ChallengeStore } from '../factors/shared/challenges.ts';
import { maskEmail, maskPhone } from '../factors/shared/mask.ts';
import type { User } from '../generated/prisma/client.ts';
import { hasMessage, translator } from '../i18n/i18n.ts';
import { pollView } from '../web/shared/poll-view.ts';
import { assertCsrf, csrfProtection, csrfSeed } from '../security/csrf.ts';
import type { SecretBox } from '../security/crypto.ts';
import type { LoginThrottle } from '../security/login-throttle.ts';
import { formBody, readForm, routeParam } from '../web/shared/forms.ts';
import type { PageRenderer } from '../server/pages.ts';
import { qrDataUrl } from '../web/shared/qr.ts';
import { scriptJson } from '../web/shared/script-json.ts';
import type { PrismaClient } from '../storage/db.ts';
import { ACCOUNT_CLIENT_ID } from './account-client.ts';
import type { AccountChange, AccountNotifier } from './notify.ts';
import type { AccountSession, AccountSessions } from './session.ts';
import { LOST_DEVICE_PATH, type AccountSignIn } from './sign-in.ts';
import { resetSecondFactors } from '../accounts/reset-factors.ts';
import { deviceRoutes } from './device-routes.ts';
import { OidcAtRest } from '../storage/oidc-at-rest.ts';

export interface AccountRouteDependencies {
  /** Wrong answers per user and factor family (shared with the sign-in pages). */
  lock: FailureLock;
  prisma: PrismaClient;
  settings: Settings;
  accounts: Accounts;
  audit: AuditLog;
  engine: FactorEngine;
  challenges: ChallengeStore;
  clients: ClientDirectory;
  pages: PageRenderer;
  box: SecretBox;
  throttle: LoginThrottle;
  sessions: AccountSessions;
  signIn: AccountSignIn;
  notifier: AccountNotifier;
  remembered: RememberedBrowsers;
  /** Whether SMS can be sent (a transport is configured): only then can numbers be added. */
  smsAvailable: boolean;
}

/** Enrolments the user names and manages one by one (apps, passkeys); other methods are addresses and numbers. */
const NAMED_ENROLMENTS = ['totp', 'passkey', 'bankid', 'push'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const csrfField = z.string().max(200);
const plainForm = z.object({ _csrf: csrfField });
const labelForm = z.object({ _csrf: csrfField, label: z.string().max(200) });
const codeForm = z.object({ _csrf: csrfField, code: z.string().max(64).default(''), label: z.string().max(200).optional() });
const contactForm = z.object({ _csrf: csrfField, value: z.string().max(320) });
const moveForm = z.object({ _csrf: csrfField, direction: z.enum(['top', 'up', 'down']) });
const passwordForm = z.object({ _csrf: csrfField, current: z.string().max(1024), password: z.string().max(1024), confirm: z.string().max(1024) });
const credentialForm = z.object({ _csrf: csrfField, credential: z.string().max(16_384).default(''), label: z.string().max(200).optional() });

/**
 * A change on the account pages happens once per code: the same right code again (which a sign-in
 * takes as a double submit) is "already used" here, or a replay could repeat a reset.
 */
function firstUseOnly(outcome: VerifyOutcome): VerifyOutcome {
  return outcome.status === 'verified' && outcome.repeated ? { status: 'failed', reason: 'used' } : outcome;
}

interface Visit {
  session: AccountSession;
  user: User;
  locale: Locale;
  factorCtx: ChallengeContext;
}

/**
 * The user's own account pages at /account: every enrolled method, adding and removing them, their
 * order, contact addresses and numbers, recovery codes, remembered browsers, other sessions and the
 * password. Any change needs a recent sign-in with the second factor (ASVS 7.5.1); every change is
 * audited and mailed to the user.
 */
export function accountRoutes(deps: AccountRouteDependencies): Router {
  const { prisma, engine, pages, audit, sessions, signIn } = deps;
  const router = new Router();
  const form = formBody(deps.settings.maxBodyBytes);
  router.use('/account', csrfProtection(deps.box));
  signIn.routes(router);

  /**
   * The signed-in visit, or undefined after redirecting to sign in (or to add the second factor).
   * `passwordOnly` is for "delete all my devices", which proves the user by an email code instead.
   */
  async function visit(ctx: Context, options: { change?: boolean; passwordOnly?: boolean } = {}): Promise<Visit | undefined> {
    const session = await sessions.read(ctx);
    const user = session ? await deps.accounts.findById(session.sub) : null;
    const returnTo = ctx.method === 'GET' ? ctx.path : '/account';
    if (!session || !user || user.status !== 'active') {
      sessions.clear(ctx);
      signIn.redirectToSignIn(ctx, { returnTo });
      return undefined;
    }
    const stale = Date.now() / 1000 - session.authTime > deps.settings.account.recentAuthMinutes * 60;
    const unproven = options.passwordOnly ? options.change && stale : (await signIn.needsStepUp(session, user)) || (options.change && !(await signIn.isRecent(session, user)));
    if (unproven) {
      signIn.redirectToSignIn(ctx, { returnTo, fresh: true });
      return undefined;
    }
    const locale = pages.localeOf(ctx);
    return {
      session,
      user,
      locale,
      factorCtx: {
        user,
        // Challenges of the account pages belong to the page session, as a sign-in's belong to its interaction.
        uid: `account:${session.providerSession.slice(0, 64)}`,
        clientId: ACCOUNT_CLIENT_ID,
        clientName: translator(locale)('account.client_name'),
        locale,
        ip: ctx.ip,
        userAgent: ctx.get('user-agent'),
        browserHash: deps.challenges.browserHash(csrfSeed(ctx)),
        issuer: deps.settings.issuer,
      },
    };
  }

  function auditContext(ctx: Context) {
    return { ip: ctx.ip, userAgent: ctx.get('user-agent') };
  }

  /** Records and mails a change, then back to the overview with a notice. */
  async function changed(ctx: Context, v: Visit, change: AccountChange, auditType: Parameters<AuditLog['record']>[0], data: Record<string, unknown>, values: Record<string, string | number> = {}) {
    await audit.record(auditType, { userId: v.user.id, data: { ...data, actor: 'user' }, ...auditContext(ctx) });
    await deps.notifier.notify(v.user, v.locale, change, values);
    ctx.status = 303;
    ctx.redirect(`/account?done=${change}`);
  }

  function dateText(locale: Locale, date: Date | null | undefined): string | undefined {
    return date ? new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short', timeZone: 'Europe/Stockholm' }).format(date) : undefined;
  }

  /** Whether some client (or the default) requires a second factor: then the last method cannot be removed. */
  function secondFactorRequired(): boolean {
    return deps.settings.mfa.required || deps.clients.file.clients.some((c) => c.mfa?.required);
  }

  /** How many things the user can pass a second factor with (verified addresses and numbers, apps, passkeys, …). */
  async function secondFactorItems(userId: string): Promise<number> {
    const [emails, phones, enrolments] = await Promise.all([
      prisma.userEmail.count({ where: { userId, verifiedAt: { not: null } } }),
      engine.modules.get('sms') ? prisma.userPhone.count({ where: { userId, verifiedAt: { not: null } } }) : 0,
      prisma.factorEnrolment.count({ where: { userId, confirmed: true, type: { in: NAMED_ENROLMENTS } } }),
    ]);
    return emails + phones + enrolments;
  }

  /** Whether removing one more method would leave none where a second factor is required. */
  async function isLastRequiredMethod(v: Visit): Promise<boolean> {
    return secondFactorRequired() && (await secondFactorItems(v.user.id)) <= 1;
  }

  async function overview(ctx: Context, v: Visit, extra: { error?: string; status?: number } = {}) {
    const t = translator(v.locale);
    const [methods, enrolments, emails, phones, browsers, signedIn] = await Promise.all([
      engine.methodsOf(v.user),
      prisma.factorEnrolment.findMany({ where: { userId: v.user.id, confirmed: true, type: { in: NAMED_ENROLMENTS } }, orderBy: { createdAt: 'asc' } }),
      prisma.userEmail.findMany({ where: { userId: v.user.id }, orderBy: { createdAt: 'asc' } }),
      prisma.userPhone.findMany({ where: { userId: v.user.id }, orderBy: { createdAt: 'asc' } }),
      deps.remembered.list(v.user.id),
      sessionsOf(v.user.id),
    ]);
    const ownSession = await sessions.providerSessionUid(ctx);
    const recovery = engine.modules.get('recovery-code');
    const ordered = methods.filter((m) => m.channel !== 'backup');
    const summary = (m: FactorModule) => {
      if (m.channel === 'email') return emails.filter((e) => e.verifiedAt).map((e) => maskEmail(e.address)).join(', ');
      if (m.id === 'sms') return phones.filter((p) => p.verifiedAt).map((p) => maskPhone(p.e164)).join(', ');
      // App + QR uses the phones registered for push approval.
      const own = enrolments.filter((e) => e.type === (m.id === 'app-qr' ? 'push' : m.id));
      return own.map((e) => e.label).join(', ');
    };
    const added = ctx.query.done;
    pages.html(
      ctx,
      'account',
      v.locale,
      {
        csrfToken: ctx.state.csrfToken as string,
        email: v.user.email,
        name: v.user.name,
        notice: typeof added === 'string' && /^[a-z_]{1,40}$/.test(added) ? t(`account.done.${added}`) : undefined,
        error: extra.error,
        methods: ordered.map((m, i) => ({ id: m.id, name: t(`factors.${m.id}.name`), summary: summary(m), primary: i === 0, first: i === 0, last: i === ordered.length - 1 })),
        enrolments: enrolments.map((e) => ({
          id: e.id,
          type: t(`factors.${e.type}.name`),
          label: e.label,
          created: dateText(v.locale, e.createdAt),
          lastUsed: dateText(v.locale, e.lastUsedAt),
        })),
        emails: emails.map((e) => ({ id: e.id, address: e.address, verified: Boolean(e.verifiedAt), signIn: e.address === v.user.email })),
        phones: phones.map((p) => ({ id: p.id, number: p.e164, verified: Boolean(p.verifiedAt) })),
        canAddEmail: emails.length < deps.settings.maxContactEmails,
        can: {
          totp: engine.modules.has('totp'),
          passkey: engine.modules.has('passkey'),
          sms: deps.smsAvailable,
          bankid: Boolean(deps.settings.bankid) && engine.modules.has('bankid') && !enrolments.some((e) => e.type === 'bankid'),
        },
        recoveryRemaining: isRecoveryCodeModule(recovery) ? await recovery.remaining(v.user.id) : undefined,
        browsers: browsers.map((b) => ({ id: b.id, browser: b.userAgent ? browserName(b.userAgent) : '?', created: dateText(v.locale, b.createdAt), lastUsed: dateText(v.locale, b.lastUsedAt), until: dateText(v.locale, b.expiresAt) })),
        sessions: signedIn.map((row) => ({ uid: row.uid, current: row.uid === ownSession, since: dateText(v.locale, row.loginTs ? new Date(row.loginTs * 1000) : null) })),
      },
      extra.status ?? 200,
    );
  }

  router.get('/account', async (ctx) => {
    const v = await visit(ctx);
    if (v) await overview(ctx, v);
  });

  router.post('/account/logout', form, async (ctx) => {
    const input = readForm(ctx, plainForm);
    assertCsrf(ctx, input._csrf);
    const session = await sessions.read(ctx);
    sessions.clear(ctx);
    ctx.status = 303;
    ctx.redirect(session ? await signIn.endSessionUrl(session) : '/account/signed-out');
  });

  // --- Order of methods ---------------------------------------------------------------------------

  router.post('/account/methods/:factor/move', form, async (ctx) => {
    const input = readForm(ctx, moveForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const order = (await engine.methodsOf(v.user)).filter((m) => m.channel !== 'backup').map((m) => m.id);
    const index = order.indexOf(ctx.params.factor);
    if (index < 0) throw new NyckelError('not_found');
    const [moved] = order.splice(index, 1);
    const to = input.direction === 'top' ? 0 : input.direction === 'up' ? Math.max(0, index - 1) : Math.min(order.length, index + 1);
    order.splice(to, 0, moved);
    await engine.setMethodOrder(v.user.id, order);
    await changed(ctx, v, 'methods_reordered', 'account.methods_reordered', { order }, { method: translator(v.locale)(`factors.${moved}.name`) });
  });

  /** A new order as a whole (dragged on the page): the same methods, in another order. */
  router.post('/account/methods/order', form, async (ctx) => {
    const input = readForm(ctx, z.object({ _csrf: csrfField, order: z.string().max(300) }));
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const current = (await engine.methodsOf(v.user)).filter((m) => m.channel !== 'backup').map((m) => m.id);
    const order = input.order.split(',');
    if (order.length !== current.length || [...order].sort().join() !== [...current].sort().join()) {
      return overview(ctx, v, { error: translator(v.locale)('account.order_invalid'), status: 400 });
    }
    await engine.setMethodOrder(v.user.id, order);
    await changed(ctx, v, 'methods_reordered', 'account.methods_reordered', { order }, { method: translator(v.locale)(`factors.${order[0]}.name`) });
  });

  // --- Named enrolments (apps, passkeys): rename, remove -------------------------------------------

  async function ownEnrolment(v: Visit, id: string) {
    if (!UUID.test(id)) throw new NyckelError('not_found');
    const row = await prisma.factorEnrolment.findFirst({ where: { id, userId: v.user.id, confirmed: true, type: { in: NAMED_ENROLMENTS } } });
    if (!row) throw new NyckelError('not_found');
    return row;
  }

  router.post('/account/enrolments/:id/rename', form, async (ctx) => {
    const input = readForm(ctx, labelForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const row = await ownEnrolment(v, ctx.params.id);
    const label = input.label.trim();
    if (label.length === 0 || label.length > 60) return overview(ctx, v, { error: translator(v.locale)('account.label_invalid'), status: 400 });
    await prisma.factorEnrolment.update({ where: { id: row.id }, data: { label } });
    await changed(ctx, v, 'method_renamed', 'account.method_renamed', { factor: row.type, id: row.id }, { method: label });
  });

  router.post('/account/enrolments/:id/remove', form, async (ctx) => {
    const input = readForm(ctx, plainForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const row = await ownEnrolment(v, ctx.params.id);
    if (await isLastRequiredMethod(v)) return overview(ctx, v, { error: translator(v.locale)('account.last_method'), status: 409 });
    await prisma.factorEnrolment.deleteMany({ where: { id: row.id, userId: v.user.id } });
    await changed(ctx, v, 'method_removed', 'account.method_removed', { factor: row.type, id: row.id }, { method: row.label });
  });

  // --- Adding an authenticator app -----------------------------------------------------------------

  function totpModule(): FactorModule {
    const module = engine.modules.get('totp');
    if (!module?.enrol.setup) throw new NyckelError('not_found');
    return module;
  }

  async function renderAppSetup(ctx: Context, v: Visit, challengeId: string, extra: { error?: string; status?: number; label?: string } = {}) {
    const module = totpModule();
    const setup = await module.enrol.setup!(v.factorCtx, challengeId);
    if (!setup) throw new NyckelError('session_expired');
    pages.html(
      ctx,
      'mfa-enrol-app',
      v.locale,
      {
        csrfToken: ctx.state.csrfToken as string,
        factor: module.id,
        challengePath: `/account/add/totp/${challengeId}`,
        qr: await qrDataUrl(setup.uri),
        uri: setup.uri,
        secretGroups: setup.secret.match(/.{1,4}/g)!.join(' '),
        label: extra.label,
        error: extra.error,
        cancelHref: '/account',
      },
      extra.status ?? 200,
    );
  }

  router.post('/account/add/totp', form, async (ctx) => {
    const input = readForm(ctx, plainForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const outcome = await totpModule().enrol.begin(v.factorCtx, {});
    if (outcome.status !== 'started') throw new NyckelError('invalid_input');
    ctx.status = 303;
    ctx.redirect(`/account/add/totp/${outcome.challengeId}`);
  });

  router.get('/account/add/totp/:id', async (ctx) => {
    const v = await visit(ctx, { change: true });
    if (v) await renderAppSetup(ctx, v, ctx.params.id);
  });

  router.post('/account/add/totp/:id/verify', form, async (ctx) => {
    const input = readForm(ctx, codeForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const code = input.code.replace(/\s+/g, '');
    const label = input.label?.trim().slice(0, 60);
    if (!/^\d{6}$/.test(code)) return renderAppSetup(ctx, v, ctx.params.id, { error: translator(v.locale)('factor_errors.format'), status: 400, label });
    const outcome = await totpModule().enrol.complete(v.factorCtx, { challengeId: ctx.params.id, code, label });
    if (outcome.status !== 'verified') return renderAppSetup(ctx, v, ctx.params.id, { ...failure(ctx, v, outcome), label });
    await enrolled(ctx, v, 'totp', outcome.target ?? label ?? '');
  });

  /** A wrong or spent answer as a message (a module's own wording first) and a status (the lock's Retry-After too). */
  function failure(ctx: Context, v: Visit, outcome: VerifyOutcome, module?: FactorModule): { error: string; status: number } {
    if (outcome.status !== 'failed') return { error: '', status: 400 };
    const t = translator(v.locale);
    const refused = outcome.reason === 'locked' || outcome.reason === 'rate_limited' || outcome.reason === 'cooldown';
    if (outcome.retryAfterSeconds && refused) ctx.set('Retry-After', String(outcome.retryAfterSeconds));
    const minutes = Math.max(1, Math.ceil((outcome.retryAfterSeconds ?? 60) / 60));
    const own = module && hasMessage(v.locale, `factor_errors.${module.id}_${outcome.reason}`) ? `${module.id}_${outcome.reason}` : outcome.reason;
    return {
      error: t(`factor_errors.${own}`, { minutes, seconds: outcome.retryAfterSeconds ?? 0, left: outcome.attemptsLeft ?? 0 }),
      status:
        refused ? 429 : outcome.reason === 'wrong_code' ? 401 : outcome.reason === 'provider_unavailable' ? 503 : 400,
    };
  }

  /** After a method is added: it becomes primary; the first second factor comes with recovery codes. */
  async function enrolled(ctx: Context, v: Visit, factor: FactorId, label: string) {
    await engine.makePrimary(v.user.id, factor);
    await audit.record('account.method_added', { userId: v.user.id, data: { factor, label, actor: 'user' }, ...auditContext(ctx) });
    await deps.notifier.notify(v.user, v.locale, 'method_added', { method: `${translator(v.locale)(`factors.${factor}.name`)}${label ? ` (${label})` : ''}` });
    // Something that can be lost (an app, a passkey) comes with recovery codes when the user has none.
    const recovery = engine.modules.get('recovery-code');
    const losable = ['app', 'device'].includes(engine.modules.get(factor)?.channel ?? '');
    const codes = losable && isRecoveryCodeModule(recovery) ? await recovery.ensure(v.user.id) : undefined;
    if (codes) return showRecoveryCodes(ctx, v, codes, 'enrolled');
    ctx.status = 303;
    ctx.redirect('/account?done=method_added');
  }

  async function showRecoveryCodes(ctx: Context, v: Visit, codes: string[], reason: 'enrolled' | 'regenerated') {
    const t = translator(v.locale);
    await audit.record('recovery-codes.generated', { userId: v.user.id, data: { count: codes.length, actor: 'user' }, ...auditContext(ctx) });
    const text = `${t('recovery.file_heading', { user: v.user.email })}\n\n${codes.join('\n')}\n`;
    pages.html(ctx, 'mfa-recovery-codes', v.locale, {
      codes,
      download: `data:text/plain;charset=utf-8,${encodeURIComponent(text)}`,
      enrolledNotice: reason === 'enrolled' ? t('account.done.method_added') : t('account.recovery_regenerated'),
      continueHref: '/account',
    });
  }

  router.post('/account/recovery-codes', form, async (ctx) => {
    const input = readForm(ctx, plainForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const recovery = engine.modules.get('recovery-code');
    if (!isRecoveryCodeModule(recovery)) throw new NyckelError('not_found');
    const codes = await recovery.regenerate(v.user.id);
    await deps.notifier.notify(v.user, v.locale, 'recovery_codes');
    await showRecoveryCodes(ctx, v, codes, 'regenerated');
  });

  // --- Passkeys (the passkey module's WebAuthn ceremony, run by /assets/passkey.js) ----------------

  function passkeyModule(): FactorModule {
    const module = engine.modules.get('passkey');
    if (!module || module.kind !== 'webauthn') throw new NyckelError('not_found');
    return module;
  }

  async function renderPasskeySetup(ctx: Context, v: Visit, extra: { error?: string; status?: number; label?: string } = {}) {
    const outcome = await passkeyModule().enrol.begin(v.factorCtx, { label: extra.label });
    if (outcome.status !== 'started') throw new NyckelError('invalid_input');
    pages.html(
      ctx,
      'account-passkey',
      v.locale,
      { csrfToken: ctx.state.csrfToken as string, challengeId: outcome.challengeId, options: scriptJson(outcome.browser), label: extra.label, error: extra.error },
      extra.status ?? 200,
    );
  }

  router.get('/account/add/passkey', async (ctx) => {
    const v = await visit(ctx, { change: true });
    if (v) await renderPasskeySetup(ctx, v);
  });

  router.post('/account/add/passkey/:id', form, async (ctx) => {
    const input = readForm(ctx, credentialForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const label = input.label?.trim().slice(0, 60);
    let credential: unknown;
    try {
      credential = JSON.parse(input.credential);
    } catch {
      return renderPasskeySetup(ctx, v, { error: translator(v.locale)('account.passkey_failed'), status: 400, label });
    }
    const outcome = await passkeyModule().enrol.complete(v.factorCtx, { challengeId: ctx.params.id, credential, label });
    if (outcome.status !== 'verified') return renderPasskeySetup(ctx, v, { ...failure(ctx, v, outcome, passkeyModule()), label });
    await enrolled(ctx, v, 'passkey', outcome.target ?? label ?? '');
  });

  // --- BankID: the personal number is bound by signing once with it --------------------------------

  function bankIdModule(): FactorModule {
    const module = engine.modules.get('bankid');
    if (!module || module.kind !== 'poll' || !deps.settings.bankid) throw new NyckelError('not_found');
    return module;
  }

  const bankIdPath = (challengeId: string) => `/account/add/bankid/${challengeId}`;

  function renderBankId(ctx: Context, v: Visit, view: { challengeId?: string; launchUrl?: string; qr?: string; message?: string; error?: string; status?: number }) {
    pages.html(
      ctx,
      'mfa-bankid',
      v.locale,
      {
        csrfToken: ctx.state.csrfToken as string,
        factor: 'bankid',
        enrolling: true,
        challengePath: view.challengeId ? bankIdPath(view.challengeId) : undefined,
        launchUrl: view.launchUrl,
        qr: view.qr,
        message: view.message,
        error: view.error,
        againPath: '/account/add/bankid',
        cancelHref: '/account',
      },
      view.status ?? 200,
    );
  }

  const bankIdView = (ctx: Context, v: Visit, challengeId: string) => pollView(bankIdModule(), v.factorCtx, challengeId, ctx.query.mode, (outcome) => failure(ctx, v, outcome, bankIdModule()).error);

  router.get('/account/add/bankid', async (ctx) => {
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const outcome = await bankIdModule().enrol.begin(v.factorCtx, {});
    if (outcome.status === 'failed') return renderBankId(ctx, v, failure(ctx, v, outcome, bankIdModule()));
    const view = await bankIdView(ctx, v, outcome.challengeId);
    const launchUrl = typeof outcome.browser?.launchUrl === 'string' ? outcome.browser.launchUrl : undefined;
    renderBankId(ctx, v, { challengeId: outcome.challengeId, launchUrl, qr: view.qr, message: view.message });
  });

  router.get('/account/add/bankid/:id/status', async (ctx) => {
    const v = await visit(ctx, { change: true });
    if (!v) return;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await bankIdView(ctx, v, ctx.params.id);
  });

  router.post('/account/add/bankid/:id/cancel', form, async (ctx) => {
    const input = readForm(ctx, plainForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    await bankIdModule().cancel?.(v.factorCtx, ctx.params.id);
    ctx.status = 204;
  });

  router.post('/account/add/bankid/:id/verify', form, async (ctx) => {
    const input = readForm(ctx, plainForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const outcome = await bankIdModule().enrol.complete(v.factorCtx, { challengeId: ctx.params.id });
    if (outcome.status === 'verified') return enrolled(ctx, v, 'bankid', outcome.target ?? '');
    if (outcome.status === 'failed') return renderBankId(ctx, v, failure(ctx, v, outcome, bankIdModule()));
    // Not confirmed yet: the page again, still polling.
    const view = await bankIdView(ctx, v, ctx.params.id);
    renderBankId(ctx, v, { challengeId: ctx.params.id, qr: view.qr, message: view.message });
  });

  // --- Contact addresses and numbers: add, prove by a code, remove ---------------------------------

  /** The module that proves an address or number (the email code's and the SMS module's enrolment). */
  function proving(kind: 'email' | 'phone'): FactorModule {
    const module = engine.modules.get(kind === 'email' ? 'email-code' : 'sms');
    if (!module) throw new NyckelError('not_found');
    return module;
  }

  async function startProof(ctx: Context, v: Visit, kind: 'email' | 'phone', targetId: string) {
    const outcome = await proving(kind).enrol.begin(v.factorCtx, { targetId });
    if (outcome.status === 'failed') return overview(ctx, v, failure(ctx, v, outcome, proving(kind)));
    ctx.status = 303;
    ctx.redirect(`/account/verify/${kind}/${outcome.challengeId}`);
  }

  /** The page where a code sent by mail or SMS is typed (proving an address, deleting all devices). */
  async function renderCodePage(
    ctx: Context,
    v: Visit,
    page: { challengeId: string; challengeFactor: string; path: string; factor: FactorId; title: string; prompt?: string; codeSentKey?: string; mask: (target: string) => string },
    extra: { error?: string; status?: number } = {},
  ) {
    const challenge = await deps.challenges.find(v.factorCtx, page.challengeId, [page.challengeFactor]);
    if (!challenge || challenge.consumedAt) throw new NyckelError('session_expired');
    pages.html(
      ctx,
      'mfa-code',
      v.locale,
      {
        csrfToken: ctx.state.csrfToken as string,
        factor: page.factor,
        challengePath: page.path,
        maskedTarget: challenge.target ? page.mask(challenge.target) : undefined,
        codeSentKey: page.codeSentKey,
        minutes: Math.max(1, Math.round((challenge.expiresAt.getTime() - challenge.createdAt.getTime()) / 60000)),
        title: page.title,
        prompt: page.prompt,
        cancelHref: '/account',
        error: extra.error,
      },
      extra.status ?? 200,
    );
  }

  function renderProof(ctx: Context, v: Visit, kind: 'email' | 'phone', challengeId: string, extra: { error?: string; status?: number } = {}) {
    const t = translator(v.locale);
    return renderCodePage(
      ctx,
      v,
      {
        challengeId,
        challengeFactor: `${kind}-enrolment`,
        path: `/account/verify/${kind}/${challengeId}`,
        factor: proving(kind).id,
        title: t(kind === 'email' ? 'account.verify_email_title' : 'account.verify_phone_title'),
        codeSentKey: kind === 'phone' ? 'factors.sms.code_sent' : 'mfa.code_sent',
        mask: kind === 'email' ? maskEmail : maskPhone,
      },
      extra,
    );
  }

  const contactKind = (value: string) => {
    if (value !== 'email' && value !== 'phone') throw new NyckelError('not_found');
    return value;
  };

  for (const kind of ['email', 'phone'] as const) {
    router.post(`/account/${kind}s`, form, (ctx) => addContact(ctx, kind));
    router.post(`/account/${kind}s/:id/verify`, form, (ctx) => proveContact(ctx, kind));
    router.post(`/account/${kind}s/:id/remove`, form, (ctx) => removeContact(ctx, kind));
  }

  async function addContact(ctx: Context, kind: 'email' | 'phone') {
    const input = readForm(ctx, contactForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const t = translator(v.locale);
    let row: { id: string };
    try {
      row =
        kind === 'email'
          ? await deps.accounts.addEmail(v.user.email, input.value.trim(), { maxAddresses: deps.settings.maxContactEmails, actor: 'user', ...auditContext(ctx) })
          : await deps.accounts.addPhone(v.user.email, input.value.trim(), { actor: 'user', ...auditContext(ctx) });
    } catch (error) {
      if (error instanceof z.ZodError) return overview(ctx, v, { error: t(kind === 'email' ? 'account.email_invalid' : 'factor_errors.invalid_number'), status: 400 });
      if (error instanceof NyckelError && error.code === 'conflict') return overview(ctx, v, { error: t(kind === 'email' ? 'account.email_conflict' : 'account.phone_conflict'), status: 409 });
      throw error;
    }
    await deps.notifier.notify(v.user, v.locale, 'contact_added', { contact: input.value.trim() });
    await startProof(ctx, v, kind, row.id);
  }

  async function ownContact(v: Visit, kind: 'email' | 'phone', id: string) {
    if (!UUID.test(id)) throw new NyckelError('not_found');
    const row =
      kind === 'email'
        ? await prisma.userEmail.findFirst({ where: { id, userId: v.user.id } }).then((r) => r && { id: r.id, value: r.address, verified: Boolean(r.verifiedAt) })
        : await prisma.userPhone.findFirst({ where: { id, userId: v.user.id } }).then((r) => r && { id: r.id, value: r.e164, verified: Boolean(r.verifiedAt) });
    if (!row) throw new NyckelError('not_found');
    return row;
  }

  async function proveContact(ctx: Context, kind: 'email' | 'phone') {
    const input = readForm(ctx, plainForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const row = await ownContact(v, kind, routeParam(ctx, 'id'));
    if (row.verified) throw new NyckelError('not_found');
    await startProof(ctx, v, kind, row.id);
  }

  async function removeContact(ctx: Context, kind: 'email' | 'phone') {
    const input = readForm(ctx, plainForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const row = await ownContact(v, kind, routeParam(ctx, 'id'));
    const t = translator(v.locale);
    if (kind === 'email' && row.value === v.user.email) return overview(ctx, v, { error: t('account.sign_in_address'), status: 409 });
    if (row.verified && (await isLastRequiredMethod(v))) return overview(ctx, v, { error: t('account.last_method'), status: 409 });
    if (kind === 'email') await deps.accounts.removeEmail(v.user.email, row.value, { actor: 'user', ...auditContext(ctx) });
    else await deps.accounts.removePhone(v.user.email, row.value, { actor: 'user', ...auditContext(ctx) });
    await changed(ctx, v, 'contact_removed', 'account.method_removed', { kind }, { contact: kind === 'email' ? row.value : maskPhone(row.value) });
  }

  router.get('/account/verify/:kind/:challengeId', async (ctx) => {
    const v = await visit(ctx, { change: true });
    if (v) await renderProof(ctx, v, contactKind(ctx.params.kind), ctx.params.challengeId);
  });

  router.post('/account/verify/:kind/:challengeId/verify', form, async (ctx) => {
    const input = readForm(ctx, codeForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const kind = contactKind(ctx.params.kind);
    const code = input.code.replace(/\s+/g, '');
    if (!/^\d{4,10}$/.test(code)) return renderProof(ctx, v, kind, ctx.params.challengeId, { error: translator(v.locale)('factor_errors.format'), status: 400 });
    const outcome = firstUseOnly(await proving(kind).enrol.complete(v.factorCtx, { challengeId: ctx.params.challengeId, code }));
    if (outcome.status !== 'verified') return renderProof(ctx, v, kind, ctx.params.challengeId, failure(ctx, v, outcome));
    await enrolled(ctx, v, kind === 'email' ? 'email-code' : 'sms', outcome.target ? (kind === 'email' ? outcome.target : maskPhone(outcome.target)) : '');
  });

  // --- Browsers, sessions, password ----------------------------------------------------------------

  router.post('/account/browsers/forget', form, async (ctx) => {
    const input = readForm(ctx, plainForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const count = await deps.accounts.forgetBrowsers(v.user.email, { actor: 'user', ...auditContext(ctx) });
    await deps.notifier.notify(v.user, v.locale, 'browsers_forgotten', { count });
    ctx.status = 303;
    ctx.redirect('/account?done=browsers_forgotten');
  });

  router.post('/account/browsers/:id/forget', form, async (ctx) => {
    const input = readForm(ctx, plainForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    if (!UUID.test(ctx.params.id)) throw new NyckelError('not_found');
    const count = await deps.remembered.revoke(v.user.id, ctx.params.id);
    if (count === 0) throw new NyckelError('not_found');
    await changed(ctx, v, 'browsers_forgotten', 'user.browsers_forgotten', { count }, { count });
  });

  router.post('/account/sessions/:uid/end', form, async (ctx) => {
    const input = readForm(ctx, plainForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const uid = ctx.params.uid;
    // The session of this page is ended with "Sign out", not here.
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(uid) || uid === (await sessions.providerSessionUid(ctx))) throw new NyckelError('not_found');
    const ended = await prisma.$executeRaw`DELETE FROM oidc_models WHERE type = 'Session' AND uid = ${uid} AND payload->>'accountId' = ${v.user.id}`;
    if (ended === 0) throw new NyckelError('not_found');
    await changed(ctx, v, 'sessions_ended', 'account.sessions_ended', { count: ended }, { count: ended });
  });

  router.post('/account/sessions/end-others', form, async (ctx) => {
    const input = readForm(ctx, plainForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    // (Rows are keyed by the hash of the session id: src/storage/oidc-at-rest.ts.)
    const thisSession = new OidcAtRest(deps.box).storedId('Session', v.session.providerSession);
    const ended = await prisma.$executeRaw`
      DELETE FROM oidc_models WHERE type = 'Session' AND payload->>'accountId' = ${v.user.id} AND id <> ${thisSession}`;
    await changed(ctx, v, 'sessions_ended', 'account.sessions_ended', { count: ended }, { count: ended });
  });

  function renderPassword(ctx: Context, v: Visit, extra: { error?: string; status?: number } = {}) {
    pages.html(ctx, 'account-password', v.locale, { csrfToken: ctx.state.csrfToken as string, error: extra.error }, extra.status ?? 200);
  }

  router.get('/account/password', async (ctx) => {
    const v = await visit(ctx, { change: true });
    if (v) renderPassword(ctx, v);
  });

  router.post('/account/password', form, async (ctx) => {
    const input = readForm(ctx, passwordForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const t = translator(v.locale);
    // The current password is a guess like any other: counted by the sign-in throttle first.
    const attempt = await deps.throttle.beginAttempt(v.user.email, ctx.ip);
    if (!(await deps.accounts.verifyPassword(v.user.email, input.current))) return renderPassword(ctx, v, { error: t('account.password_wrong'), status: 401 });
    await attempt.succeeded();
    if (input.password !== input.confirm) return renderPassword(ctx, v, { error: t('account.password_mismatch'), status: 400 });
    const problem = checkPassword(input.password, { email: v.user.email });
    if (problem) return renderPassword(ctx, v, { error: t(`account.password_problem.${problem}`), status: 400 });
    // Other sessions end and relying parties' tokens are revoked; this browser stays signed in.
    await deps.accounts.setPassword(v.user.email, input.password, { actor: 'user', keepSessionUid: await sessions.providerSessionUid(ctx), ...auditContext(ctx) });
    await deps.notifier.notify(v.user, v.locale, 'password_changed');
    ctx.status = 303;
    ctx.redirect('/account?done=password_changed');
  });

  // --- Delete all my devices (EU Login's PANIC): password + an email code ---------------------------

  function emailCodeModule(): FactorModule {
    const module = engine.modules.get('email-code');
    if (!module) throw new NyckelError('not_found');
    return module;
  }

  async function renderLostDevice(ctx: Context, v: Visit, extra: { error?: string; status?: number } = {}) {
    const targets = await emailCodeModule().targets(v.user);
    pages.html(ctx, 'account-lost-device', v.locale, { csrfToken: ctx.state.csrfToken as string, targets, error: extra.error }, extra.status ?? 200);
  }

  router.get(LOST_DEVICE_PATH, async (ctx) => {
    const v = await visit(ctx, { change: true, passwordOnly: true });
    if (v) await renderLostDevice(ctx, v);
  });

  router.post(`${LOST_DEVICE_PATH}/start`, form, async (ctx) => {
    const input = readForm(ctx, z.object({ _csrf: csrfField, target: z.string().max(100).default('') }));
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true, passwordOnly: true });
    if (!v) return;
    const outcome = await emailCodeModule().start(v.factorCtx, { targetId: input.target });
    if (outcome.status === 'failed') return renderLostDevice(ctx, v, failure(ctx, v, outcome, emailCodeModule()));
    ctx.status = 303;
    ctx.redirect(`${LOST_DEVICE_PATH}/${outcome.challengeId}`);
  });

  function renderLostDeviceCode(ctx: Context, v: Visit, challengeId: string, extra: { error?: string; status?: number } = {}) {
    const t = translator(v.locale);
    return renderCodePage(
      ctx,
      v,
      {
        challengeId,
        challengeFactor: 'email-code',
        path: `${LOST_DEVICE_PATH}/${challengeId}`,
        factor: 'email-code',
        title: t('account.lost_device_title'),
        prompt: t('account.lost_device_confirm'),
        mask: maskEmail,
      },
      extra,
    );
  }

  router.get(`${LOST_DEVICE_PATH}/:challengeId`, async (ctx) => {
    const v = await visit(ctx, { change: true, passwordOnly: true });
    if (v) await renderLostDeviceCode(ctx, v, ctx.params.challengeId);
  });

  router.post(`${LOST_DEVICE_PATH}/:challengeId/verify`, form, async (ctx) => {
    const input = readForm(ctx, codeForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true, passwordOnly: true });
    if (!v) return;
    const code = input.code.replace(/\s+/g, '');
    if (!/^\d{4,10}$/.test(code)) return renderLostDeviceCode(ctx, v, ctx.params.challengeId, { error: translator(v.locale)('factor_errors.format'), status: 400 });
    const outcome = firstUseOnly(await emailCodeModule().verify(v.factorCtx, { challengeId: ctx.params.challengeId, code }));
    if (outcome.status !== 'verified') return renderLostDeviceCode(ctx, v, ctx.params.challengeId, failure(ctx, v, outcome));
    const removed = await resetSecondFactors(
      prisma,
      audit,
      v.user.id,
      { reason: 'the user deleted all their devices (lost device)', actor: 'user', keepSessionUid: await sessions.providerSessionUid(ctx), ...auditContext(ctx) },
      deps.accounts.revokeElsewhere,
    );
    // The user may now enrol again without a second factor, in this session.
    sessions.write(ctx, { ...v.session, noFactorAtSignIn: true, seenAt: Date.now() });
    await deps.notifier.notify(v.user, v.locale, 'devices_deleted', { count: removed.factors + removed.phones });
    ctx.status = 303;
    ctx.redirect('/account?done=devices_deleted');
  });

  deviceRoutes(router, { visit, enrolled, form, pages, prisma, box: deps.box, settings: deps.settings, lock: deps.lock });
  /** The user's Nyckel sessions (each browser signed in), newest first. */
  async function sessionsOf(userId: string) {
    const rows = await prisma.oidcModel.findMany({ where: { type: 'Session', payload: { path: ['accountId'], equals: userId } }, select: { uid: true, payload: true } });
    return rows
      .map((row) => ({ uid: row.uid ?? '', loginTs: (row.payload as { loginTs?: number }).loginTs }))
      .filter((row) => row.uid)
      .sort((a, b) => (b.loginTs ?? 0) - (a.loginTs ?? 0));
  }

  return router;
}

/** "Firefox on Windows": enough to recognise a browser, from its User-Agent. */
export function browserName(userAgent: string): string {
  const browser = /Edg\//.test(userAgent) ? 'Edge' : /Firefox\//.test(userAgent) ? 'Firefox' : /Chrom(e|ium)\//.test(userAgent) ? 'Chrome' : /Safari\//.test(userAgent) ? 'Safari' : 'Browser';
  const system = /Android/.test(userAgent) ? 'Android' : /iPhone|iPad/.test(userAgent) ? 'iOS' : /Windows/.test(userAgent) ? 'Windows' : /Mac OS X/.test(userAgent) ? 'macOS' : /Linux/.test(userAgent) ? 'Linux' : '';
  return system ? `${browser} · ${system}` : browser;
}
