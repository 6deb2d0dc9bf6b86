/**
 * Nyckel as a separate process, as production runs it: start time, idle RSS, peak RSS and server CPU
 * per sign-in under load (part of `npm run bench`, or alone: `npm run bench:footprint`).
 *
 * The server is started twice on one fresh database (PGlite in a temp data directory, or a fresh
 * PostgreSQL database): the first start migrates and creates the demo user (its password is read from
 * the output), the second is the warm start measured. Runs the built server (dist/, `npm run build`)
 * when there is one, else the sources through tsx (`--sources` forces that). Linux only (/proc).
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
import { passwordLogin } from './http.ts';
import { runInterleaved, runLoad, type LoadResult } from './load.ts';
import { APP, benchClientsYaml, freshPostgresDatabase, leftover, MFA_APP, PASSWORD } from './targets.ts';
import { seedTotpUsers, TotpUserPool } from './totp-users.ts';
import { loadSettings } from '../src/config/settings.ts';

type Operation = (worker: number) => Promise<void>;
import { newMasterKey } from '../src/security/crypto.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MiB = 1024 * 1024;

export interface FootprintOptions {
  postgresAdminUrl?: string;
  /** Redis for the short-lived models and counters (REDIS_URL), under a prefix of this run's own. */
  redisUrl?: string;
  /** Also compare a sign-in with an authenticator app to one without, with this many seeded app users. */
  totpUsers?: number;
  /** Run src/main.ts through tsx even when dist/ is built. */
  sources?: boolean;
  concurrency: number;
  seconds: number;
  warmupSeconds: number;
  progress?: (text: string) => void;
}

export interface Footprint {
  entry: 'dist' | 'sources';
  firstStartSeconds: number;
  startSeconds: number;
  idleRssMiB: number;
  peakRssMiB: number;
  signIn: LoadResult;
  /** CPU time of the server process (all its threads) per counted sign-in; the load generator is not in it. */
  serverCpuMsPerSignIn: number;
  /** Read and write system calls of the server process per counted sign-in (sockets, files, pipes). */
  serverSyscallsPerSignIn: { reads: number; writes: number };
  /** With `totpUsers`: server CPU per sign-in without and with the app's code, in alternating slices. */
  totp?: { passwordOnlyCpuMs: number; withAppCodeCpuMs: number; errors: number };
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
function cpuMs(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  // utime and stime are fields 14 and 15 of stat; index 11 and 12 after the command name.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

/** Read and write system calls of a process so far, from /proc (each one a kernel entry, dear on a VM). */
function ioCalls(pid: number): { reads: number; writes: number } {
  const io = fs.readFileSync(`/proc/${pid}/io`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)`, 'm').exec(io)?.[1] ?? NaN);
  return { reads: field('syscr'), writes: field('syscw') };
}

/** The node flags production starts the built server with (docker/Dockerfile's CMD, `npm run start:prod`). */
export const PRODUCTION_NODE_FLAGS = ['--max-semi-space-size=8'];

export function serverCommand(sources: boolean): { entry: 'dist' | 'sources'; args: string[] } {
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

export async function measureFootprint(options: FootprintOptions): Promise<Footprint> {
  const progress = options.progress ?? (() => {});
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nyckel-footprint-'));
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
    progress(`footprint: first start of the ${entry === 'dist' ? 'built server (dist/)' : 'sources (tsx)'} on a new database`);
    const first = await startServer(args, env, port);
    // The demo user is created just after the server is ready.
    const demoPassword = () => /demo user: \S+\s+password: (\S+)/.exec(first.output())?.[1];
    for (let i = 0; i < 500 && !demoPassword(); i++) await new Promise((resolve) => setTimeout(resolve, 20));
    const password = demoPassword();
    await first.stop();
    if (!password) throw new Error(`no demo password in the first start's output:\n${first.output()}`);
    const appUsers = options.totpUsers ? new TotpUserPool(await seedTotpUsers(loadSettings(env), options.totpUsers, PASSWORD)) : undefined;

    progress('footprint: warm start, idle for 3 s');
    const server = await startServer(args, env, port);
    const stopServer = leftover(() => server.stop());
    try {
      await new Promise((resolve) => setTimeout(resolve, 3000));
      const pid = server.child.pid!;
      const idleRssMiB = rssMiB(pid);
      let peakRssMiB = idleRssMiB;
      const sampler = setInterval(() => (peakRssMiB = Math.max(peakRssMiB, rssMiB(pid))), 25);
      let cpuAtOpen = 0;
      let cpuAtClose = 0;
      let callsAtOpen = { reads: 0, writes: 0 };
      let callsAtClose = callsAtOpen;
      const login = passwordLogin({ ...flowOf(port), users: [{ email: 'demo@nyckel.example', password }] });
      await login(0);
      progress(`footprint: sign-ins at concurrency ${options.concurrency}, ${options.warmupSeconds} s + ${options.seconds} s`);
      const signIn = await runLoad('password sign-in, server process', login, {
        concurrency: options.concurrency,
        seconds: options.seconds,
        warmupSeconds: options.warmupSeconds,
        onWindow: (moment) => {
          if (moment === 'opened') [cpuAtOpen, callsAtOpen] = [cpuMs(pid), ioCalls(pid)];
          else [cpuAtClose, callsAtClose] = [cpuMs(pid), ioCalls(pid)];
        },
      });
      clearInterval(sampler);
      const totp = appUsers && (await compareAppCode(pid, options, login, passwordLogin({ ...flowOf(port, MFA_APP), users: appUsers.take })));
      return {
        entry,
        firstStartSeconds: first.seconds,
        startSeconds: server.seconds,
        idleRssMiB,
        peakRssMiB,
        signIn,
        serverCpuMsPerSignIn: signIn.ops ? (cpuAtClose - cpuAtOpen) / signIn.ops : NaN,
        serverSyscallsPerSignIn: {
          reads: (callsAtClose.reads - callsAtOpen.reads) / signIn.ops,
          writes: (callsAtClose.writes - callsAtOpen.writes) / signIn.ops,
        },
        totp,
      };
    } finally {
      await stopServer();
    }
  } finally {
    await postgres?.drop().catch(() => {});
    if (options.redisUrl) await forgetRedisKeys(options.redisUrl, redisPrefix).catch(() => {});
    await removeDataDir();
  }
}

const flowOf = (port: number, app: { clientId: string; secret: string; redirectUri: string } = APP) => ({
  base: new URL(`http://127.0.0.1:${port}`),
  clientId: app.clientId,
  secret: app.secret,
  redirectUri: app.redirectUri,
});

/** Server CPU per sign-in with the password alone and with the app's code after it, measured in alternating slices. */
async function compareAppCode(pid: number, options: FootprintOptions, passwordOnly: Operation, withAppCode: Operation) {
  const cpu = { passwordOnly: 0, withAppCode: 0 };
  let opened = 0;
  const window = (which: keyof typeof cpu) => (moment: 'opened' | 'closed') =>
    moment === 'opened' ? (opened = cpuMs(pid)) : (cpu[which] += cpuMs(pid) - opened);
  options.progress?.('footprint: password only against password + app code, alternating slices');
  const [plain, app] = await runInterleaved(
    [
      { name: 'password only', operation: passwordOnly, onWindow: window('passwordOnly') },
      { name: 'password + app code', operation: withAppCode, onWindow: window('withAppCode') },
    ],
    { concurrency: options.concurrency, seconds: options.seconds * 2, warmupSeconds: options.warmupSeconds, slices: 6, sliceWarmupSeconds: 0.5 },
  );
  return { passwordOnlyCpuMs: cpu.passwordOnly / plain.ops, withAppCodeCpuMs: cpu.withAppCode / app.ops, errors: plain.errors + app.errors };
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

export { MiB };
