/** Parts that startNyckel assembles: the delivery side and the sign-in core. */
import { AccountNotifier } from './accounts/notify.ts';
import { Consents } from './accounts/consents.ts';
import { Invitations } from './accounts/invitations.ts';
import type { NyckelOptions } from './nyckel.ts';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { Accounts } from './accounts/accounts.ts';
import { AuditLog } from './accounts/audit.ts';
import { ClientDirectory } from './clients/directory.ts';
import type { Settings } from './config/settings.ts';
import { type Logger } from './logger.ts';
import { SecretBox } from './security/crypto.ts';
import { MailDispatcher } from './delivery/dispatcher.ts';
import { devOutboxRoutes } from './web/outbox-routes.ts';
import { createMailTransport } from './delivery/transports.ts';
import { enqueueMail } from './delivery/dispatcher.ts';
import { signMail, type UnsignedMail } from './branding/mail-branding.ts';
import { FactorEngine } from './factors/engine.ts';
import { SignIns } from './factors/sign-ins.ts';
import { SignInFlow } from './web/sign-in/sign-in-flow.ts';
import { Factors } from './factors/registry.ts';
import { SecondFactorPolicy } from './factors/policy.ts';
import { RememberedBrowsers } from './factors/remember.ts';
import { ChallengeStore } from './factors/shared/challenges.ts';
import { createSmsTransport, withDeliveryCounts } from './factors/sms/transport.ts';
import { FailureLock } from './factors/shared/failure-lock.ts';
import { BackgroundWork } from './factors/shared/background.ts';
import { sendGuards } from './factors/shared/send-guard.ts';
import { PageRenderer } from './server/pages.ts';
import { type Database } from './storage/db.ts';
import type { CounterStore } from './storage/counters.ts';
import { type Signals } from './storage/signals.ts';
import { Metrics } from './observability/metrics.ts';
import { instrumentFactorModules } from './factors/factor-metrics.ts';

/** Mail and SMS: the transports, the mail dispatcher and, outside production, the outbox pages. */
export function openDelivery(
  settings: Settings,
  options: NyckelOptions,
  parts: { prisma: Database['prisma']; box: SecretBox; pages: PageRenderer; logger: Logger; metrics: Metrics },
) {
  const { prisma, box, pages, logger, metrics } = parts;
  const mailTransport = options.mailTransport ?? createMailTransport(settings);
  const dispatcher = new MailDispatcher(prisma, box, mailTransport, settings.mail.from, logger.child({ component: 'mail' }), { metrics });
  const smsTransport = withDeliveryCounts(
    options.smsTransport ?? createSmsTransport(settings, { prisma, box }, { httpClient: options.twilioHttpClient }),
    metrics,
  );
  const outbox = devOutboxRoutes({ production: settings.production, transport: mailTransport, prisma, box, pages, sms: smsTransport?.name === 'outbox' });
  return { mailTransport, dispatcher, smsTransport, outbox };
}

interface SignInParts {
  prisma: Database['prisma'];
  box: SecretBox;
  counters: CounterStore;
  signals: Signals;
  accounts: Accounts;
  audit: AuditLog;
  metrics: Metrics;
  logger: Logger;
  clients: ClientDirectory;
  /** The views factors write mail with, and the brand that signs it. */
  pages: Pick<PageRenderer, 'views' | 'branding'>;
  smsTransport: ReturnType<typeof withDeliveryCounts>;
  dispatcher: MailDispatcher;
}

/** The factor modules, the engine over them, the one second-factor policy and the one sign-in flow. */
export function buildSignIn(factors: Factors, settings: Settings, parts: SignInParts) {
  const { prisma, box, counters, signals, accounts, audit, metrics, logger, clients, pages, smsTransport, dispatcher } = parts;
  const views = pages.views;
  const sign = (mail: UnsignedMail) => signMail(pages.branding, mail);
  const failureLock = new FailureLock(counters, settings.factors.maxFailures, settings.factors.lockSeconds);
  const challenges = new ChallengeStore(prisma, box, failureLock, signals);
  const remembered = new RememberedBrowsers(prisma, box);
  const sends = sendGuards(counters, box, settings, audit);
  const background = new BackgroundWork(logger.child({ component: 'background' }));
  const factorModules = factors.modules({
    prisma,
    settings,
    challenges,
    views,
    box,
    lock: failureLock,
    counters,
    sends,
    background,
    sms: { transport: smsTransport, audit, logger: logger.child({ component: 'sms' }) },
    mail: { enqueue: (tx, mail) => enqueueMail(tx, box, sign(mail)), kick: () => dispatcher.kick() },
  });
  instrumentFactorModules(factorModules, metrics);
  const engine = new FactorEngine(prisma, factorModules, clients, settings);
  const signIns = new SignIns(prisma);
  const secondFactor = new SecondFactorPolicy(engine, remembered, (id) => accounts.findById(id));
  const notifier = new AccountNotifier(prisma, box, () => dispatcher.kick(), pages.branding);
  const invitations = new Invitations(
    prisma,
    box,
    audit,
    { enqueue: (tx, mail) => enqueueMail(tx, box, sign(mail)), kick: () => dispatcher.kick() },
    { issuer: settings.issuer, ttlSeconds: settings.signIn.invitationTtl, defaultLocale: settings.defaultLocale, service: settings.brand.name },
    accounts.revokeElsewhere,
  );
  const flow = new SignInFlow({ policy: secondFactor, signIns, accounts, remembered, audit, metrics, notifier });
  /** For oidc-provider's login prompt: does this signed-in session still lack a required second factor? */
  const needsSecondFactor = (ctx: KoaContextWithOIDC) =>
    secondFactor.sessionNeedsSecondFactor(ctx, ctx.oidc.session, ctx.oidc.client?.clientId, ctx.oidc.params as Record<string, unknown>);

  return {
    failureLock,
    challenges,
    remembered,
    background,
    engine,
    signIns,
    secondFactor,
    flow,
    needsSecondFactor,
    notifier,
    sends,
    consents: new Consents(prisma, audit, accounts.revokeElsewhere),
    invitations,
  };
}
