import type { Consents } from './accounts/consents.ts';
import type { Invitations } from './accounts/invitations.ts';
import { invitationRoutes } from './web/sign-in/invitation-routes.ts';
import { passwordResetRoutes } from './web/sign-in/password-reset-routes.ts';
import { enqueueMail } from './delivery/dispatcher.ts';
import { signMail } from './branding/mail-branding.ts';
import type { SendGuards } from './factors/shared/send-guard.ts';
import type Router from '@koa/router';
import type Provider from 'oidc-provider';
import { accountRoutes } from './account/account-routes.ts';
import type { AccountNotifier } from './accounts/notify.ts';
import { AccountSessions } from './account/session.ts';
import { AccountSignIn } from './account/sign-in.ts';
import type { Accounts } from './accounts/accounts.ts';
import type { AuditLog } from './accounts/audit.ts';
import { adminApiRoutes } from './admin/routes.ts';
import { authenticatorRoutes } from './authenticator/routes.ts';
import type { ClientDirectory } from './clients/directory.ts';
import type { Settings } from './config/settings.ts';
import { demoRoutes } from './demo-app.ts';
import { deliveryStatus, type MailDispatcher } from './delivery/dispatcher.ts';
import type { FactorEngine } from './factors/engine.ts';
import type { SecondFactorPolicy } from './factors/policy.ts';
import type { Factors } from './factors/registry.ts';
import type { RememberedBrowsers } from './factors/remember.ts';
import type { ChallengeStore } from './factors/shared/challenges.ts';
import type { FailureLock } from './factors/shared/failure-lock.ts';
import type { SignIns } from './factors/sign-ins.ts';
import type { Logger } from './logger.ts';
import { metricsRoutes } from './observability/metrics-routes.ts';
import type { Metrics } from './observability/metrics.ts';
import type { SecretBox } from './security/crypto.ts';
import type { LoginThrottle } from './accounts/login-throttle.ts';
import { homeRoutes } from './server/home-routes.ts';
import type { PageRenderer } from './server/pages.ts';
import type { PrismaClient } from './storage/db.ts';
import { pendingMigrations } from './storage/migrate.ts';
import type { RedisStore } from './storage/redis.ts';
import type { ErasureDependencies } from './accounts/erase.ts';
import type { Signals } from './storage/signals.ts';
import { interactionRoutes } from './web/sign-in/login-routes.ts';
import { factorRoutes } from './web/sign-in/second-factor-routes.ts';
import type { SignInFlow } from './web/sign-in/sign-in-flow.ts';

/** What one Nyckel's web routes are built from (src/nyckel.ts builds it once). */
export interface RouterParts {
  settings: Settings;
  logger: Logger;
  metrics: Metrics;
  prisma: PrismaClient;
  redis?: RedisStore;
  signals: Signals;
  box: SecretBox;
  accounts: Accounts;
  audit: AuditLog;
  /** Erasing an account (the account pages' "Delete my account", the admin API). */
  erasure: ErasureDependencies;
  throttle: LoginThrottle;
  clients: ClientDirectory;
  pages: PageRenderer;
  failureLock: FailureLock;
  challenges: ChallengeStore;
  remembered: RememberedBrowsers;
  engine: FactorEngine;
  signIns: SignIns;
  secondFactor: SecondFactorPolicy;
  flow: SignInFlow;
  sends: SendGuards;
  consents: Consents;
  invitations: Invitations;
  notifier: AccountNotifier;
  factors: Factors;
  dispatcher: MailDispatcher;
  /** The development outbox's pages, when mail goes to the outbox. */
  outbox?: Router;
  smsAvailable: boolean;
  provider: () => Provider;
  /** Set once close() starts: /readyz then answers 503. */
  isStopping: () => boolean;
  /** This process's own listener, for the account pages' requests to itself. */
  backChannel?: string;
}

/** The account pages, with their sign-in through Nyckel itself. */
function accountPages(p: RouterParts): Router {
  const { prisma, settings, accounts, audit, engine, pages, box } = p;
  const sessions = new AccountSessions(box, p.provider, settings.account.sessionMinutes);
  const signIn = new AccountSignIn({
    issuer: settings.issuer,
    backChannel: p.backChannel,
    sessions,
    accounts,
    audit,
    engine,
    pages,
    recentAuthMinutes: settings.account.recentAuthMinutes,
  });
  return accountRoutes({
    prisma,
    settings,
    accounts,
    audit,
    engine,
    challenges: p.challenges,
    clients: p.clients,
    pages,
    box,
    throttle: p.throttle,
    lock: p.failureLock,
    sessions,
    signIn,
    notifier: p.notifier,
    remembered: p.remembered,
    smsAvailable: p.smsAvailable,
    factorUis: p.factors.uis,
    policy: p.secondFactor,
    consents: p.consents,
    erasure: p.erasure,
  });
}

/** /healthz and /readyz (the database, pending migrations, Redis, stopping) and the home page. */
function home(p: RouterParts): Router {
  const { prisma, redis } = p;
  return homeRoutes(p.pages, async () => {
    const answers = await prisma.$queryRaw`SELECT 1`.then(
      () => true,
      () => false,
    );
    return {
      database: answers,
      pendingMigrations: answers ? await pendingMigrations((sql) => prisma.$queryRawUnsafe(sql)) : [],
      redis: redis ? await redis.ping() : undefined,
      stopping: p.isStopping(),
    };
  });
}

/** "Forgot your password?" on the password page. */
function passwordResets(p: RouterParts): Router {
  const { settings, prisma, accounts, audit, clients, pages, box, provider } = p;
  return passwordResetRoutes({
    prisma,
    accounts,
    audit,
    clients,
    pages,
    box,
    provider,
    challenges: p.challenges,
    mailGuard: p.sends.mail,
    mail: { enqueue: (tx, mail) => enqueueMail(tx, box, signMail(pages.branding, mail)), kick: () => p.dispatcher.kick() },
    ttlSeconds: settings.signIn.passwordResetTtl,
    policy: p.secondFactor,
    signIns: p.signIns,
    flow: p.flow,
    maxBodyBytes: settings.maxBodyBytes,
    signInNames: settings.signIn.names,
  });
}

/** Every router of the web layer, in the order they are tried (oidc-provider's own routes come last). */
export function appRouters(p: RouterParts): Router[] {
  const { settings, prisma, accounts, audit, clients, pages, box, metrics, provider } = p;
  return [
    home(p),
    ...(settings.metrics.enabled ? [metricsRoutes(metrics, settings.metrics.token)] : []),
    ...(settings.demo ? [demoRoutes(settings.issuer, pages)] : []),
    ...(p.outbox ? [p.outbox] : []),
    accountPages(p),
    authenticatorRoutes({
      prisma,
      box,
      lock: p.failureLock,
      settings,
      audit,
      kickMail: () => p.dispatcher.kick(),
      signMail: (mail) => signMail(pages.branding, mail),
      signals: p.signals,
    }),
    invitationRoutes({ provider, invitations: p.invitations, accounts, signIns: p.signIns, flow: p.flow, pages, box, maxBodyBytes: settings.maxBodyBytes }),
    interactionRoutes({
      provider,
      accounts,
      audit,
      throttle: p.throttle,
      clients,
      pages,
      box,
      maxBodyBytes: settings.maxBodyBytes,
      policy: p.secondFactor,
      flow: p.flow,
      metrics,
      signInNames: settings.signIn.names,
      signIns: p.signIns,
      consents: p.consents,
      passwordReset: settings.signIn.passwordReset,
    }),
    ...(settings.signIn.passwordReset ? [passwordResets(p)] : []),
    adminApiRoutes({
      settings,
      prisma,
      accounts,
      audit,
      clients,
      box,
      provider,
      logger: p.logger.child({ component: 'admin-api' }),
      locks: { failures: p.failureLock, throttle: p.throttle },
      invitations: p.invitations,
      erasure: p.erasure,
    }),
    factorRoutes({
      clients,
      provider,
      engine: p.engine,
      policy: p.secondFactor,
      uis: p.factors.uis,
      signIns: p.signIns,
      flow: p.flow,
      accounts,
      audit,
      challenges: p.challenges,
      pages,
      box,
      issuer: settings.issuer,
      maxBodyBytes: settings.maxBodyBytes,
      notifier: p.notifier,
      deliveryState: (id) => deliveryStatus(prisma, id),
      metrics,
      signals: p.signals,
    }),
  ];
}
