/**
 * Nyckel as a separate process, as production runs it, for the benches that look at that process
 * from outside (bench/footprint.ts, bench/requests.ts): started twice on one fresh database (PGlite in
 * a temp data directory, or a fresh PostgreSQL database), the first start migrating and creating the
 * demo user (its password is read from the output), the second the warm start measured. Runs the
 * built server (dist/, `npm run build`) when there is one, else the sources through tsx (`sources`
 * forces that). Linux only (/proc).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { passwordLogin, type LoginUser } from './http.ts';
import { APP, benchClientsYaml, freshPostgresDatabase, leftover, PASSWORD } from './targets.ts';
import { seedPasswordUsers, seedTotpUsers, TotpUserPool } from './totp-users.ts';
import { loadSettings } from '../src/config/settings.ts';
import { newMasterKey } from '../src/security/crypto.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface ServerProcessOptions {
  postgresAdminUrl?: string;
  /** Redis for the short-lived models and counters (REDIS_URL), under a prefix of this run's own. */
  redisUrl?: string;
  /** Users with a password only to seed before the warm start, signing in in turn (32: more than the concurrency). */
  passwordUsers?: number;
  /** Users with an authenticator app to seed before the warm start (for sign-ins at an app that asks for its code). */
  totpUsers?: number;
  /** Run src/main.ts through tsx even when dist/ is built. */
  sources?: boolean;
  progress?: (text: string) => void;
}

export interface ServerProcess {
  pid: number;
  entry: 'dist' | 'sources';
  firstStartSeconds: number;
  startSeconds: number;
  /** One password sign-in after the other (the seeded password users in turn, or `users`) at `app`, as a new browser each. */
  signIn(app?: { clientId: string; secret: string; redirectUri: string }, users?: LoginUser[] | (() => LoginUser)): (worker: number) => Promise<void>;
  /** The seeded users with an authenticator app, one per sign-in (with `totpUsers`). */
  appUsers?: TotpUserPool;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.once('error', reject);
  });
}

/** The resident set of a process now, from /proc (MiB). */
export function rssMiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

/** User + system CPU time of a process so far, from /proc (ms). */
export function cpuMs(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  // utime and stime are fields 14 and 15 of stat; index 11 and 12 after the command name.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

/** Read and write system calls of a process so far, from /proc (each one a kernel entry, dear on a VM). */
export function ioCalls(pid: number): { reads: number; writes: number } {
  const io = fs.readFileSync(`/proc/${pid}/io`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)`, 'm').exec(io)?.[1] ?? NaN);
  return { reads: field('syscr'), writes: field('syscw') };
}

/**
 * CPU time of each thread of a process so far, in ns, from /proc/<pid>/task/<tid>/schedstat (exact,
 * unlike stat's 10 ms ticks), summed by thread name (digits dropped): `main` for the JavaScript thread,
 * `libuv-worker` for the thread pool (argon2id), `V8Worker` for the garbage collector's helpers.
 */
export function threadCpuNs(pid: number): Map<string, number> {
  const byName = new Map<string, number>();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = tid === String(pid) ? 'main' : fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim().replace(/\d+$/, '');
      const ns = Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      byName.set(name, (byName.get(name) ?? 0) + ns);
    } catch {
      // A thread that ended between the listing and the read.
    }
  }
  return byName;
}

/** The node flags production starts the built server with (docker/Dockerfile's CMD, `npm run start:prod`). */
export const PRODUCTION_NODE_FLAGS = ['--max-semi-space-size=8'];

function serverCommand(sources: boolean): { entry: 'dist' | 'sources'; args: string[] } {
  const built = fs.existsSync(path.join(root, 'dist/main.js'));
  if (built && !sources) return { entry: 'dist', args: [...PRODUCTION_NODE_FLAGS, path.join(root, 'bin/launch.js')] };
  return { entry: 'sources', args: ['--import', 'tsx', path.join(root, 'src/main.ts')] };
}

interface Started {
  child: ChildProcess;
  seconds: number;
  output: () => string;
  stop(): Promise<void>;
}

async function startServer(args: string[], env: NodeJS.ProcessEnv, port: number): Promise<Started> {
  const began = performance.now();
  const child = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const deadline = began + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode} before it was ready:\n${output}`);
    if (performance.now() > deadline) {
      await stop();
      throw new Error(`the server was not ready within 60 s:\n${output}`);
    }
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return { child, seconds: (performance.now() - began) / 1000, output: () => output, stop };
}

/** Runs `body` with the warm-started server; everything it created (process, database, files, Redis keys) is removed after. */
export async function withServerProcess<T>(options: ServerProcessOptions, body: (server: ServerProcess) => Promise<T>): Promise<T> {
  const progress = options.progress ?? (() => {});
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nyckel-process-'));
  const removeDataDir = leftover(async () => fs.rmSync(dataDir, { recursive: true, force: true }));
  const postgres = options.postgresAdminUrl ? await freshPostgresDatabase(options.postgresAdminUrl) : undefined;
  const clientsFile = path.join(dataDir, 'clients.yaml');
  fs.writeFileSync(clientsFile, benchClientsYaml());
  const port = await freePort();
  const redisPrefix = `nyckel-bench-${crypto.randomBytes(4).toString('hex')}:`;
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'development',
    PORT: String(port),
    HOST: '127.0.0.1',
    NYCKEL_LOG_LEVEL: 'warn',
    NYCKEL_DEMO: 'true',
    NYCKEL_MASTER_KEY: newMasterKey(),
    NYCKEL_DATA_DIR: dataDir,
    NYCKEL_CLIENTS: clientsFile,
    ...(postgres ? { DATABASE_URL: postgres.url } : {}),
    ...(options.redisUrl ? { REDIS_URL: options.redisUrl, NYCKEL_REDIS_PREFIX: redisPrefix } : {}),
    // e.g. BENCH_SERVER_NODE_OPTIONS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the server under load.
    ...(process.env.BENCH_SERVER_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_SERVER_NODE_OPTIONS } : {}),
  };
  const { entry, args } = serverCommand(options.sources ?? false);
  try {
    progress(`first start of the ${entry === 'dist' ? 'built server (dist/)' : 'sources (tsx)'} on a new database`);
    const first = await startServer(args, env, port);
    // The demo user is created just after the server is ready: the first start has done its work.
    const demoCreated = () => /demo user: \S+\s+password: \S+/.test(first.output());
    for (let i = 0; i < 500 && !demoCreated(); i++) await new Promise((resolve) => setTimeout(resolve, 20));
    await first.stop();
    if (!demoCreated()) throw new Error(`no demo user in the first start's output:\n${first.output()}`);
    const passwordUsers = await seedPasswordUsers(loadSettings(env), options.passwordUsers ?? 32, PASSWORD);
    const appUsers = options.totpUsers ? new TotpUserPool(await seedTotpUsers(loadSettings(env), options.totpUsers, PASSWORD)) : undefined;

    progress('warm start');
    const server = await startServer(args, env, port);
    const stopServer = leftover(() => server.stop());
    try {
      const base = new URL(`http://127.0.0.1:${port}`);
      return await body({
        pid: server.child.pid!,
        entry,
        firstStartSeconds: first.seconds,
        startSeconds: server.seconds,
        signIn: (app = APP, users = passwordUsers) => passwordLogin({ base, clientId: app.clientId, secret: app.secret, redirectUri: app.redirectUri, users }),
        appUsers,
      });
    } finally {
      await stopServer();
    }
  } finally {
    await postgres?.drop().catch(() => {});
    if (options.redisUrl) await forgetRedisKeys(options.redisUrl, redisPrefix).catch(() => {});
    await removeDataDir();
  }
}

async function forgetRedisKeys(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    for await (const keys of redis.scanStream({ match: `${prefix}*`, count: 500 })) if ((keys as string[]).length) await redis.del(...(keys as string[]));
  } finally {
    redis.disconnect();
  }
}
