import { isProviderPath } from './provider/provider.ts';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type Provider from 'oidc-provider';
import { Accounts } from './accounts/accounts.ts';
import { AuditLog } from './accounts/audit.ts';
import { databaseOnly, inTurn, revokeGrantsInRedis } from './accounts/revoke-access.ts';
import { backchannelLogoutNotices } from './provider/logout-notices.ts';
import { readClientsFile, type ClientsFile } from './clients/clients-file.ts';
import { ClientDirectory } from './clients/directory.ts';
import type { Settings } from './config/settings.ts';
import { loadCookieKeys, deleteExpiredSigningKeys, ensureSigningKeys } from './keys/signing-keys.ts';
import { createLogger, type Logger } from './logger.ts';
import { CODE_VERIFICATION_PATH } from './provider/device-flow.ts';
import { DeviceFlowLimits } from './provider/device-flow-limits.ts';
import { resolveMasterKey, SecretBox } from './security/crypto.ts';
import { LoginThrottle, sweepExpiredRateLimits } from './accounts/login-throttle.ts';
import { eraseDueAccounts, type ErasureDependencies } from './accounts/erase.ts';
import { createApp } from './server/app.ts';
import { Branding } from './branding/brand.ts';
import { appRouters } from './app-routers.ts';
import { buildSignIn, openDelivery } from './nyckel-parts.ts';
import { providerHolder } from './provider-holder.ts';
import { withAccountClient } from './account/account-client.ts';
import { MailDispatcher } from './delivery/dispatcher.ts';
import type { MailTransport } from './delivery/transport.ts';
import { SignIns } from './factors/sign-ins.ts';
import { Factors } from './factors/registry.ts';
import { withInstalledMethods, withKnownMethods } from './factors/installed-methods.ts';
import { type SmsTransport } from './factors/sms/transport.ts';
import type twilio from 'twilio';
import { BackgroundWork } from './factors/shared/background.ts';
import { PageRenderer } from './server/pages.ts';
import { Views } from './server/views.ts';
import { databaseTarget, openDatabase, type Database, type DatabaseTarget } from './storage/db.ts';
import { applyMigrationsExclusively, pendingMigrations } from './storage/migrate.ts';
import { sweepExpiredOidcModels } from './storage/oidc-adapter.ts';
import { sealLegacySecrets } from './keys/legacy-secrets.ts';
import type { RedisStore } from './storage/redis.ts';
import type { CounterStore } from './storage/counters.ts';
import { LocalSignals, RedisSignals, type Signals } from './storage/signals.ts';
import { Metrics } from './observability/metrics.ts';

export interface NyckelOptions {
  logger?: Logger;
  /** Defaults to the target named by the settings (DATABASE_URL, else PGlite in NYCKEL_DATA_DIR). */
  database?: DatabaseTarget | Database;
  /** Start the HTTP listener (default true). */
  listen?: boolean;
  clientsFile?: ClientsFile;
  /** Defaults to the transport named by settings.mail.transport (tests inject fakes here). */
  mailTransport?: MailTransport;
  /** Defaults to the transport named by settings.sms.transport (tests inject fakes here). */
  smsTransport?: SmsTransport;
  /** For the Twilio SMS transports: an HTTP client of Twilio's SDK (tests send to a loopback fake). */
  twilioHttpClient?: twilio.RequestClient;
  /** The second factors (default: every installed one, src/factors/registry.ts; a test build adds its own). */
  factors?: Factors;
}

export interface Nyckel {
  settings: Settings;
  logger: Logger;
  db: Database;
  /** Present when REDIS_URL is set. */
  redis?: RedisStore;
  accounts: Accounts;
  audit: AuditLog;
  box: SecretBox;
  clients: ClientDirectory;
  /** Queue mail with enqueueMail (src/delivery/dispatcher.ts), then `mail.dispatcher.kick()`. */
  mail: { dispatcher: MailDispatcher; transport: MailTransport };
  /** This instance's Prometheus registry and counters (served at /metrics). */
  metrics: Metrics;
  provider(): Provider;
  server?: http.Server;
  url: string;
  callback: ReturnType<ReturnType<typeof createApp>['callback']>;
  /** Re-reads the clients file and signing keys and swaps in a new provider; sessions are kept. */
  reload(): Promise<void>;
  sweep(): Promise<void>;
  close(): Promise<void>;
}

/** This process's own listener as a loopback URL (for requests to itself that need not leave the host). */
function loopbackUrl(server: http.Server): string {
  const address = server.address() as AddressInfo;
  const host = ['0.0.0.0', '::', ''].includes(address.address) ? '127.0.0.1' : address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

/**
 * Stops accepting connections and lets the requests in flight finish; connections still busy after
 * the grace period are cut.
 */
async function closeGracefully(server: http.Server, graceMs: number): Promise<void> {
  await new Promise<void>((resolve) => {
    const cut = setTimeout(() => server.closeAllConnections(), graceMs);
    cut.unref();
    server.close(() => {
      clearTimeout(cut);
      resolve();
    });
    server.closeIdleConnections();
  });
}

/** Opens a database handle and brings it to the committed schema (the schema engine only loaded when something is pending). */
export async function openMigratedDatabase(target: DatabaseTarget): Promise<Database> {
  const db = await openDatabase(target);
  try {
    const pending = await pendingMigrations((sql) => db.prisma.$queryRawUnsafe<Array<{ migration_name: string }>>(sql));
    if (pending.length > 0) await applyMigrationsExclusively(target, db.adapterFactory);
  } catch (error) {
    await db.close();
    throw error;
  }
  return db;
}

export async function startNyckel(givenSettings: Settings, options: NyckelOptions = {}): Promise<Nyckel> {
  let settings = givenSettings;
  // Bind first, so that with PORT=0 the issuer can name the port actually bound.
  let handler: http.RequestListener = (_req, res) => {
    res.statusCode = 503;
    res.end();
  };
  let server: http.Server | undefined;
  if (options.listen !== false) {
    server = http.createServer((req, res) => handler(req, res));
    server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      server!.once('error', reject);
      server!.listen(settings.port, settings.host, () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    if (!settings.issuerExplicit) settings = { ...settings, port, issuer: `http://localhost:${port}` };
  }
  try {
    return await assemble(settings, options, server, (listener) => (handler = listener));
  } catch (error) {
    server?.close();
    throw error;
  }
}

/** Shutdown: no new waits, the listener drained, queued mail and background sends finished, then the stores. */
async function closeInOrder(parts: {
  signals: Signals;
  server?: http.Server;
  graceMs: number;
  dispatcher: MailDispatcher;
  background: BackgroundWork;
  redis?: RedisStore;
  db?: Database;
}): Promise<void> {
  await parts.signals.close();
  if (parts.server) await closeGracefully(parts.server, parts.graceMs);
  await parts.dispatcher.stop();
  await parts.background.drain();
  await parts.redis?.close();
  await parts.db?.close();
}

/** Rows whose time is up: oidc-provider's models, rate limits, retired signing keys, sign-ins, day-old challenges. */
async function sweepExpiredRows(prisma: Database['prisma'], signIns: SignIns, hintSeconds: number): Promise<void> {
  const now = new Date();
  await sweepExpiredOidcModels(prisma, now);
  await sweepExpiredRateLimits(prisma, now);
  await deleteExpiredSigningKeys(prisma, now, hintSeconds);
  await signIns.sweep(now);
  await prisma.factorChallenge.deleteMany({ where: { expiresAt: { lte: new Date(now.getTime() - 86_400_000) } } });
}

/** The database (migrated), Redis when configured, the master key's box, and the keys kept in the database. */
async function openStores(settings: Settings, options: NyckelOptions, logger: Logger) {
  const ownsDatabase = !options.database || !('prisma' in options.database);
  const db = options.database && 'prisma' in options.database ? options.database : await openMigratedDatabase(options.database ?? databaseTarget(settings));
  const { prisma } = db;
  // ioredis is loaded only by a node that uses Redis.
  const redis = settings.redis ? await (await import('./storage/redis.ts')).openRedis(settings.redis, logger.child({ component: 'redis' })) : undefined;
  const counters: CounterStore = { prisma, redis: redis?.client };
  const signals: Signals = redis ? new RedisSignals(redis.client, redis.subscriber, redis.prefix) : new LocalSignals();
  const box = new SecretBox(resolveMasterKey(settings));
  await sealLegacySecrets(prisma, box, logger);
  await ensureSigningKeys(prisma, box);
  const cookieKeys = await loadCookieKeys(prisma, box);
  return { ownsDatabase, db, prisma, redis, counters, signals, box, cookieKeys };
}

async function assemble(
  givenSettings: Settings,
  options: NyckelOptions,
  server: http.Server | undefined,
  setHandler: (listener: http.RequestListener) => void,
): Promise<Nyckel> {
  const factors = options.factors ?? new Factors();
  const settings = withInstalledMethods(givenSettings, factors);
  const logger = options.logger ?? createLogger(settings.logLevel);
  const metrics = new Metrics();
  /** The clients file (read again on reload), its methods checked against the registry, plus the account pages' client. */
  const readClients = (given?: ClientsFile) =>
    withAccountClient(
      withKnownMethods(given ?? readClientsFile(settings.clientsFile), settings.clientsFile, factors),
      settings.issuer,
      factors.ids,
      settings.brand.name,
    );
  const clientsFile = readClients(options.clientsFile);
  const clients = new ClientDirectory(clientsFile);
  const branding = new Branding(settings.brand, clients);
  const { ownsDatabase, db, prisma, redis, counters, signals, box, cookieKeys } = await openStores(settings, options, logger);

  const audit = new AuditLog(prisma, logger);
  const warn = (details: Record<string, unknown>, message: string) => logger.warn(details, message);
  // After a revocation: tokens in Redis go, then the apps of the ended sessions are told (the provider
  // is read when a revocation happens, after it is built).
  const accounts = new Accounts(
    prisma,
    audit,
    settings.argon2,
    inTurn(
      redis ? revokeGrantsInRedis(redis.client, warn) : databaseOnly,
      backchannelLogoutNotices(() => providers.current, warn),
    ),
  );
  const throttle = new LoginThrottle(counters, settings.loginThrottle);
  const views = new Views(factors.folders(), branding.name);
  const pages = new PageRenderer(views, clients, settings.defaultLocale, branding);
  const { mailTransport, dispatcher, smsTransport, outbox } = openDelivery(settings, options, { prisma, box, pages, logger, metrics });

  const signIn = buildSignIn(factors, settings, { prisma, box, counters, signals, accounts, audit, metrics, logger, clients, pages, smsTransport, dispatcher });
  const { background, signIns, needsSecondFactor, notifier } = signIn;
  const erasure: ErasureDependencies = { prisma, box, audit, revokeElsewhere: accounts.revokeElsewhere, redis: redis?.client, warn };

  const deviceLimits = new DeviceFlowLimits(counters, settings.deviceFlow, CODE_VERIFICATION_PATH);
  const providers = providerHolder({ settings, prisma, box, redis, logger, metrics, accounts, clients, cookieKeys, pages, needsSecondFactor, deviceLimits });
  await providers.rebuild();
  const provider = () => providers.current;

  const app = createApp({
    isProviderPath,
    factorScripts: factors.scripts(),
    factorImages: factors.images(settings),
    issuer: settings.issuer,
    trustProxy: settings.trustProxy,
    cookieKeys,
    logger,
    pages,
    provider,
    metrics,
    beforeProvider: [deviceLimits.middleware],
    routers: appRouters({
      settings,
      logger,
      metrics,
      prisma,
      redis,
      signals,
      box,
      accounts,
      audit,
      erasure,
      throttle,
      clients,
      pages,
      ...signIn,
      notifier,
      factors,
      dispatcher,
      outbox,
      smsAvailable: Boolean(smsTransport),
      provider,
      isStopping: () => stopping,
      backChannel: server ? loopbackUrl(server) : undefined,
    }),
  });
  const callback = app.callback();

  const sweep = async () => {
    await sweepExpiredRows(prisma, signIns, settings.ttl.session);
    // Accounts whose deletion grace period (NYCKEL_ACCOUNT_DELETION_GRACE_DAYS) has ended.
    await eraseDueAccounts(erasure);
    await providers.refreshKeysIfChanged();
  };
  /** Set once close() starts: /readyz then answers 503 so a balancer stops sending new sign-ins. */
  let stopping = false;
  const sweepTimer = setInterval(() => {
    sweep().catch((error) => logger.warn({ err: error }, 'sweep of expired rows failed'));
  }, settings.sweepIntervalSeconds * 1000);
  sweepTimer.unref();
  dispatcher.start();

  setHandler((req, res) => void callback(req, res));
  const url = server ? `http://localhost:${(server.address() as AddressInfo).port}` : settings.issuer;

  return {
    settings,
    logger,
    db,
    redis,
    accounts,
    audit,
    box,
    clients,
    mail: { dispatcher, transport: mailTransport },
    metrics,
    provider,
    server,
    url,
    callback,
    // async: a clients file that cannot be read rejects the reload rather than throwing at the caller.
    reload: async () => providers.swapClients(clients, readClients()),
    sweep,
    close: async () => {
      stopping = true;
      clearInterval(sweepTimer);
      await closeInOrder({ signals, server, graceMs: settings.shutdownGraceSeconds * 1000, dispatcher, background, redis, db: ownsDatabase ? db : undefined });
    },
  };
}
