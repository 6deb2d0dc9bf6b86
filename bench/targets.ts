import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import Provider, { errors, type Configuration } from 'oidc-provider';
import pg from 'pg';
import pino from 'pino';
import { parseClientsFile, toProviderMetadata, type ClientsFile } from '../src/clients/clients-file.ts';
import { loadSettings } from '../src/config/settings.ts';
import { startNyckel, type Nyckel } from '../src/nyckel.ts';
import { newMasterKey } from '../src/security/crypto.ts';

export const RESOURCE = 'https://api.bench.example/reports';
export const MACHINE = { clientId: 'bench-machine', secret: 'bench-machine-secret-0000000001', scope: 'reports:read' };
export const APP = { clientId: 'bench-app', secret: 'bench-app-secret-000000000000001', redirectUri: 'http://localhost:4000/bench-cb' };
/** An app that asks every user for the authenticator app's code (the app-code figure of bench:footprint --totp). */
export const MFA_APP = { clientId: 'bench-mfa-app', secret: 'bench-mfa-app-secret-0000000001', redirectUri: 'http://localhost:4000/bench-mfa-cb' };
export const PASSWORD = 'bench horse battery staple 2024';

/** The benchmark's clients file; `appMfa` (YAML flow mapping, e.g. `{ required: true, methods: [totp] }`) makes the app ask for a second factor. */
export function benchClientsYaml(options: { appMfa?: string } = {}): string {
  return `
clients:
  - client_id: ${MACHINE.clientId}
    name: Benchmark machine client
    grant_types: [client_credentials]
    token_endpoint_auth_method: client_secret_basic
    client_secret: ${MACHINE.secret}
    scopes: [reports:read, reports:write]
  - client_id: ${APP.clientId}
    name: Benchmark first-party app
    first_party: true
    token_endpoint_auth_method: client_secret_basic
    client_secret: ${APP.secret}
    redirect_uris: [${APP.redirectUri}]
    scopes: [openid, profile, email]${options.appMfa ? `\n    mfa: ${options.appMfa}` : ''}
  - client_id: ${MFA_APP.clientId}
    name: Benchmark first-party app with an authenticator app
    first_party: true
    token_endpoint_auth_method: client_secret_basic
    client_secret: ${MFA_APP.secret}
    redirect_uris: [${MFA_APP.redirectUri}]
    scopes: [openid, profile, email]
    mfa: { required: true, methods: [totp] }
resources:
  - identifier: ${RESOURCE}
    name: Reports API
    scopes: [reports:read, reports:write]
    access_token_ttl: 600
`;
}

export function benchClients(): ClientsFile {
  return parseClientsFile(benchClientsYaml(), 'bench-clients.yaml', {});
}

/** The first call runs `fn`; later ones get the same promise (stop may be called by a signal and by `finally`). */
function once(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => (running ??= fn());
}

/**
 * Removal of everything created on disk or on the database server so far, also for a start that is
 * still under way when the run is interrupted (SIGINT) or given up on.
 */
const leftovers = new Set<() => Promise<void>>();

/** Undoes in the reverse order of creation (processes before the database they use, …). */
export async function removeLeftovers(): Promise<void> {
  for (const remove of [...leftovers].reverse()) await remove().catch(() => {});
}

/** Registers a removal for removeLeftovers; the returned function runs it once (and unregisters it). */
export function leftover(remove: () => Promise<void>): () => Promise<void> {
  const removeOnce = once(async () => {
    leftovers.delete(removeOnce);
    await remove();
  });
  leftovers.add(removeOnce);
  return removeOnce;
}

const LOOPBACK_DB_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]', '::1', '']);

/** A new, empty database on the PostgreSQL server at `adminUrl` (loopback only), dropped by `drop`. */
export async function freshPostgresDatabase(adminUrl: string): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  const admin = new URL(adminUrl);
  if (!LOOPBACK_DB_HOSTS.has(admin.hostname)) throw new Error(`the benchmark uses loopback addresses only; ${admin.hostname} is not one`);
  const name = `nyckel_bench_${crypto.randomBytes(6).toString('hex')}`;
  const run = async (sql: string) => {
    const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 10_000, statement_timeout: 60_000 });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  const drop = leftover(() => run(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  await run(`CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return { url: url.toString(), name, drop };
}

export interface BenchNyckel {
  nyckel: Nyckel;
  /** Where the benchmark sends requests: the bound port on 127.0.0.1. */
  base: URL;
  database: string;
  stop(): Promise<void>;
}

export async function startBenchNyckel(options: { postgresAdminUrl?: string }): Promise<BenchNyckel> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nyckel-bench-'));
  const removeDataDir = leftover(async () => fs.rmSync(dataDir, { recursive: true, force: true }));
  let postgres: Awaited<ReturnType<typeof freshPostgresDatabase>> | undefined;
  const cleanupStorage = async () => {
    try {
      await postgres?.drop();
    } finally {
      await removeDataDir();
    }
  };
  try {
    postgres = options.postgresAdminUrl ? await freshPostgresDatabase(options.postgresAdminUrl) : undefined;
  } catch (error) {
    await removeDataDir();
    throw error;
  }
  try {
    const settings = loadSettings({
      PORT: '0',
      HOST: '127.0.0.1',
      NYCKEL_LOG_LEVEL: 'silent',
      NYCKEL_DEMO: 'false',
      NYCKEL_MASTER_KEY: newMasterKey(),
      NYCKEL_DATA_DIR: dataDir,
      ...(postgres ? { DATABASE_URL: postgres.url } : {}),
      // The argon2 parameters are left at their defaults: the production ones.
    });
    const nyckel = await startNyckel(settings, { clientsFile: benchClients(), logger: pino({ level: 'silent' }) });
    const port = (nyckel.server!.address() as AddressInfo).port;
    return {
      nyckel,
      base: new URL(`http://127.0.0.1:${port}`),
      database: postgres ? `PostgreSQL (${new URL(postgres.url).host}, database ${postgres.name})` : `PGlite (${path.join(dataDir, 'pgdata')})`,
      stop: once(async () => {
        try {
          await nyckel.close();
        } finally {
          await cleanupStorage();
        }
      }),
    };
  } catch (error) {
    await cleanupStorage().catch(() => {});
    throw error;
  }
}

export interface BareProvider {
  provider: Provider;
  base: URL;
  stop(): Promise<void>;
}

/**
 * The baseline: oidc-provider as it comes (in-memory adapter), configured only as far as needed to
 * issue the same client_credentials JWT access tokens as Nyckel: same client metadata, same resource
 * server, ES256-signed JWTs, an ES256 + RS256 key set like Nyckel's.
 */
export async function startBareProvider(clients: ClientsFile): Promise<BareProvider> {
  const server = http.createServer();
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const keys: JWK[] = [];
  for (const alg of ['ES256', 'RS256'] as const) {
    const { privateKey } = await generateKeyPair(alg, { extractable: true });
    keys.push({ ...(await exportJWK(privateKey)), alg, use: 'sig', kid: `${alg.toLowerCase()}-bare` });
  }
  const resources = new Map(clients.resources.map((r) => [r.identifier, r]));
  const accessTokenTtl = (_ctx: unknown, token: { resourceServer?: { accessTokenTTL?: number } }) => token.resourceServer?.accessTokenTTL ?? 3600;
  const configuration: Configuration = {
    clients: clients.clients.map(toProviderMetadata) as Configuration['clients'],
    jwks: { keys },
    cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
    scopes: ['openid', 'offline_access', ...clients.resources.flatMap((r) => r.scopes)],
    ttl: { AccessToken: accessTokenTtl, ClientCredentials: accessTokenTtl },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, indicator) => {
          const resource = resources.get(indicator);
          if (!resource) throw new errors.InvalidTarget('unknown resource indicator');
          return {
            scope: resource.scopes.join(' '),
            audience: resource.identifier,
            accessTokenTTL: resource.access_token_ttl ?? 3600,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
  };
  // The library announces its in-memory adapter on stderr; that is the point here, so keep it quiet.
  const warn = console.warn;
  console.warn = () => {};
  let provider: Provider;
  try {
    provider = new Provider(`http://localhost:${port}`, configuration);
  } finally {
    console.warn = warn;
  }
  const callback = provider.callback();
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => void callback(req, res));
  return {
    provider,
    base: new URL(`http://127.0.0.1:${port}`),
    stop: once(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
        }),
    ),
  };
}
