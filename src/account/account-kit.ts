import { browserName } from './browser-name.ts';
import type { Consents } from '../accounts/consents.ts';
import type { ErasureDependencies } from '../accounts/erase.ts';
import { consentRows } from './consent-routes.ts';
import { accountName } from '../accounts/accounts.ts';
import type { FailureLock } from '../factors/shared/failure-lock.ts';
import type { Context } from 'koa';
import type { Accounts, Locale } from '../accounts/accounts.ts';
import type { AuditLog } from '../accounts/audit.ts';
import type { ClientDirectory } from '../clients/directory.ts';
import type { FactorId } from '../clients/clients-file.ts';
import type { FactorUi } from '../factors/ui-contract.ts';
import type { Settings } from '../config/settings.ts';
import { NyckelError } from '../errors.ts';
import type { ChallengeContext, FactorModule, VerifyOutcome } from '../factors/contract.ts';
import type { FactorEngine } from '../factors/engine.ts';
import type { RememberedBrowsers } from '../factors/remember.ts';
import { isRecoveryCodeModule } from '../factors/recovery-code/index.ts';
import type { ChallengeStore } from '../factors/shared/challenges.ts';
import { formatPhone, maskEmail, maskPhone } from '../factors/shared/mask.ts';
import type { User } from '../generated/prisma/client.ts';
import { hasMessage, translator } from '../i18n/i18n.ts';
import { csrfSeed } from '../security/csrf.ts';
import type { SecretBox } from '../security/crypto.ts';
import type { LoginThrottle } from '../accounts/login-throttle.ts';
import type { PageRenderer } from '../server/pages.ts';
import type { PrismaClient } from '../storage/db.ts';
import { ACCOUNT_CLIENT_ID } from './account-client.ts';
import type { AccountChange, AccountNotifier } from '../accounts/notify.ts';
import type { AccountSession, AccountSessions } from './session.ts';
import { type AccountSignIn } from './sign-in.ts';
import type { SecondFactorPolicy } from '../factors/policy.ts';

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
  /** The one second-factor policy: recovery codes with an enrolment, the last-method guard. */
  policy: SecondFactorPolicy;
  /** The registered factors' page sides: "Add a method" lists those that say how (`FactorUi.account`). */
  factorUis: ReadonlyMap<FactorId, FactorUi>;
  /** Relying parties the user has allowed something (listed with "Revoke"). */
  consents: Consents;
  /** "Delete my account": erasing it (at once, or by the sweep after the grace period). */
  erasure: ErasureDependencies;
}

/**
 * Enrolments the user names and manages one by one (apps, passkeys, phones, BankID): those of the
 * factors added under "Add a method"; other methods are addresses and numbers.
 */
export function namedEnrolments(deps: Pick<AccountRouteDependencies, 'factorUis'>): string[] {
  return [...deps.factorUis.values()].filter((ui) => ui.account).map((ui) => ui.id);
}
export { UUID, csrfField, plainForm, labelForm, codeForm, contactForm, moveForm, passwordForm, credentialForm } from './account-forms.ts';

/**
 * A change on the account pages happens once per code: the same right code again (which a sign-in
 * takes as a double submit) is "already used" here, or a replay could repeat a reset.
 */
export function firstUseOnly(outcome: VerifyOutcome): VerifyOutcome {
  return outcome.status === 'verified' && outcome.repeated ? { status: 'failed', reason: 'used' } : outcome;
}

export interface Visit {
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

function failure(ctx: Context, v: Visit, outcome: VerifyOutcome, module?: FactorModule): { error: string; status: number } {
  if (outcome.status !== 'failed') return { error: '', status: 400 };
  const t = translator(v.locale);
  const refused = outcome.reason === 'locked' || outcome.reason === 'rate_limited' || outcome.reason === 'cooldown';
  if (outcome.retryAfterSeconds && refused) ctx.set('Retry-After', String(outcome.retryAfterSeconds));
  const minutes = Math.max(1, Math.ceil((outcome.retryAfterSeconds ?? 60) / 60));
  const own = module && hasMessage(v.locale, `factor_errors.${module.id}_${outcome.reason}`) ? `${module.id}_${outcome.reason}` : outcome.reason;
  return {
    error: t(`factor_errors.${own}`, { minutes, seconds: outcome.retryAfterSeconds ?? 0, left: outcome.attemptsLeft ?? 0 }),
    status: refused ? 429 : outcome.reason === 'wrong_code' ? 401 : outcome.reason === 'provider_unavailable' ? 503 : 400,
  };
}

/** The visit and the account facts the pages show: who is signed in, their methods and sessions, audited changes. */
function visitHelpers(deps: AccountRouteDependencies) {
  const { prisma, engine, pages, audit, sessions, signIn } = deps;
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
    const unproven = options.passwordOnly
      ? options.change && stale
      : (await signIn.needsStepUp(session, user)) || (options.change && !(await signIn.isRecent(session, user)));
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
        clientName: translator(locale)('account.client_name', { service: pages.branding.name }),
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
  async function changed(
    ctx: Context,
    v: Visit,
    change: AccountChange,
    auditType: Parameters<AuditLog['record']>[0],
    data: Record<string, unknown>,
    values: Record<string, string | number> = {},
  ) {
    await audit.record(auditType, { userId: v.user.id, data: { ...data, actor: 'user' }, ...auditContext(ctx) });
    await deps.notifier.notify(v.user, v.locale, change, values);
    ctx.status = 303;
    ctx.redirect(`/account?done=${change}`);
  }

  function dateText(locale: Locale, date: Date | null | undefined): string | undefined {
    return date ? new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short', timeZone: 'Europe/Stockholm' }).format(date) : undefined;
  }

  /** How many things the user can pass a second factor with (verified addresses and numbers, apps, passkeys, …). */
  async function secondFactorItems(userId: string): Promise<number> {
    const [emails, phones, enrolments] = await Promise.all([
      prisma.userEmail.count({ where: { userId, verifiedAt: { not: null } } }),
      engine.modules.get('sms') ? prisma.userPhone.count({ where: { userId, verifiedAt: { not: null } } }) : 0,
      prisma.factorEnrolment.count({ where: { userId, confirmed: true, type: { in: namedEnrolments(deps) } } }),
    ]);
    return emails + phones + enrolments;
  }

  /** Whether removing one more method would leave none where a second factor is required. */
  async function isLastRequiredMethod(v: Visit): Promise<boolean> {
    return !deps.policy.mayRemoveMethod(await secondFactorItems(v.user.id));
  }

  /** The user's Nyckel sessions (each browser signed in), newest first. */
  async function sessionsOf(userId: string) {
    const rows = await prisma.oidcModel.findMany({
      where: { type: 'Session', payload: { path: ['accountId'], equals: userId } },
      select: { uid: true, payload: true },
    });
    return rows
      .map((row) => ({ uid: row.uid ?? '', loginTs: (row.payload as { loginTs?: number }).loginTs }))
      .filter((row) => row.uid)
      .sort((a, b) => (b.loginTs ?? 0) - (a.loginTs ?? 0));
  }

  return { visit, auditContext, changed, dateText, secondFactorItems, isLastRequiredMethod, sessionsOf };
}

/** The pages that several sections show: the overview, a failure in words, the code page, recovery codes. */
function pageHelpers(deps: AccountRouteDependencies, base: ReturnType<typeof visitHelpers>) {
  const { prisma, engine, pages, sessions } = deps;
  const { dateText, sessionsOf } = base;
  async function overview(ctx: Context, v: Visit, extra: { error?: string; status?: number } = {}) {
    const t = translator(v.locale);
    const [methods, enrolments, emails, phones, browsers, signedIn] = await Promise.all([
      engine.methodsOf(v.user),
      prisma.factorEnrolment.findMany({ where: { userId: v.user.id, confirmed: true, type: { in: namedEnrolments(deps) } }, orderBy: { createdAt: 'asc' } }),
      prisma.userEmail.findMany({ where: { userId: v.user.id }, orderBy: { createdAt: 'asc' } }),
      prisma.userPhone.findMany({ where: { userId: v.user.id }, orderBy: { createdAt: 'asc' } }),
      deps.remembered.list(v.user.id),
      sessionsOf(v.user.id),
    ]);
    const consents = await consentRows(deps, base, v.user.id, t, v.locale);
    const ownSession = await sessions.providerSessionUid(ctx);
    const recovery = engine.modules.get('recovery-code');
    const ordered = methods.filter((m) => m.channel !== 'backup');
    const summary = (m: FactorModule) => {
      if (m.channel === 'email')
        return emails
          .filter((e) => e.verifiedAt)
          .map((e) => maskEmail(e.address))
          .join(', ');
      if (m.id === 'sms')
        return phones
          .filter((p) => p.verifiedAt)
          .map((p) => maskPhone(p.e164))
          .join(', ');
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
        username: v.user.username,
        name: v.user.name,
        notice: typeof added === 'string' && /^[a-z_]{1,40}$/.test(added) ? t(`account.done.${added}`) : undefined,
        error: extra.error,
        methods: ordered.map((m, i) => ({
          id: m.id,
          name: t(`factors.${m.id}.name`),
          summary: summary(m),
          primary: i === 0,
          first: i === 0,
          last: i === ordered.length - 1,
        })),
        enrolments: enrolments.map((e) => ({
          id: e.id,
          type: t(`factors.${e.type}.name`),
          label: e.label,
          created: dateText(v.locale, e.createdAt),
          lastUsed: dateText(v.locale, e.lastUsedAt),
        })),
        emails: emails.map((e) => ({ id: e.id, address: e.address, verified: Boolean(e.verifiedAt), signIn: e.address === v.user.email })),
        phones: phones.map((p) => ({ id: p.id, number: formatPhone(p.e164), verified: Boolean(p.verifiedAt) })),
        canAddEmail: emails.length < deps.settings.maxContactEmails,
        consents,
        can: { sms: deps.smsAvailable },
        addMethods: await addableMethods(v),
        recoveryRemaining: isRecoveryCodeModule(recovery) ? await recovery.remaining(v.user.id) : undefined,
        browsers: browsers.map((b) => ({
          id: b.id,
          browser: b.userAgent ? browserName(b.userAgent) : '?',
          created: dateText(v.locale, b.createdAt),
          lastUsed: dateText(v.locale, b.lastUsedAt),
          until: dateText(v.locale, b.expiresAt),
        })),
        sessions: signedIn.map((row) => ({
          uid: row.uid,
          current: row.uid === ownSession,
          since: dateText(v.locale, row.loginTs ? new Date(row.loginTs * 1000) : null),
        })),
      },
      extra.status ?? 200,
    );
  }

  /** "Add a method": every registered factor whose page side says how, installed, set up and not had once already. */
  async function addableMethods(v: Visit): Promise<Array<{ label: string; post?: string; href?: string }>> {
    const t = translator(v.locale);
    const offered = await Promise.all(
      [...deps.factorUis.values()].map(async ({ id, account }) => {
        const module = engine.modules.get(id);
        if (!account || !module || (account.available && !account.available(deps.settings))) return undefined;
        if (account.once && (await module.isEnrolled(v.user))) return undefined;
        return account.via === 'setup' ? { label: t(account.label), post: `/account/add/${id}` } : { label: t(account.label), href: account.via.href };
      }),
    );
    return offered.filter((entry) => entry !== undefined);
  }

  return { overview, failure };
}

/** After a method is added (recovery codes with the first), and the page where a mailed or texted code is typed. */
function methodPageHelpers(deps: AccountRouteDependencies, base: ReturnType<typeof visitHelpers>) {
  const { engine, pages, audit } = deps;
  const { auditContext } = base;
  /** After a method is added: it becomes primary; the first second factor comes with recovery codes. */
  async function enrolled(ctx: Context, v: Visit, factor: FactorId, label: string) {
    await engine.makePrimary(v.user.id, factor);
    await audit.record('account.method_added', { userId: v.user.id, data: { factor, label, actor: 'user' }, ...auditContext(ctx) });
    await deps.notifier.notify(v.user, v.locale, 'method_added', { method: `${translator(v.locale)(`factors.${factor}.name`)}${label ? ` (${label})` : ''}` });
    const module = engine.modules.get(factor);
    const codes = module ? await deps.policy.recoveryCodesOnEnrolment(undefined, module)?.ensure(v.user.id) : undefined;
    if (codes) return showRecoveryCodes(ctx, v, codes, 'enrolled');
    ctx.status = 303;
    ctx.redirect('/account?done=method_added');
  }

  async function showRecoveryCodes(ctx: Context, v: Visit, codes: string[], reason: 'enrolled' | 'regenerated') {
    const t = translator(v.locale);
    await audit.record('recovery-codes.generated', { userId: v.user.id, data: { count: codes.length, actor: 'user' }, ...auditContext(ctx) });
    const text = `${t('recovery.file_heading', { user: accountName(v.user), service: pages.branding.name })}\n\n${codes.join('\n')}\n`;
    pages.html(ctx, 'mfa-recovery-codes', v.locale, {
      codes,
      download: `data:text/plain;charset=utf-8,${encodeURIComponent(text)}`,
      enrolledNotice: reason === 'enrolled' ? t('account.done.method_added') : t('account.recovery_regenerated'),
      continueHref: '/account',
    });
  }

  /** The page where a code sent by mail or SMS is typed (proving an address, deleting all devices). */
  async function renderCodePage(
    ctx: Context,
    v: Visit,
    page: {
      challengeId: string;
      challengeFactor: string;
      path: string;
      factor: FactorId;
      title: string;
      prompt?: string;
      codeSentKey?: string;
      /** The button says what it does ("Delete all my devices"), where that is more than signing in. */
      submitLabel?: string;
      mask: (target: string) => string;
    },
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
        submitLabel: page.submitLabel,
        cancelHref: '/account',
        error: extra.error,
      },
      extra.status ?? 200,
    );
  }
  return { enrolled, showRecoveryCodes, renderCodePage };
}

/** What the account pages share: the visit, the overview, failures in words, the code page, audited changes. */
export function createAccountKit(deps: AccountRouteDependencies) {
  const base = visitHelpers(deps);
  return { ...base, ...pageHelpers(deps, base), ...methodPageHelpers(deps, base) };
}

export type AccountKit = ReturnType<typeof createAccountKit>;
