/**
 * `npm run bench:load`: complete sign-ins with an authenticator app (TOTP) through one Nyckel node,
 * then through two, behind a round-robin balancer on loopback (127.0.0.1 only).
 *
 * Set-up: a fresh database on the local PostgreSQL server (BENCH_DATABASE_URL, default
 * postgres://postgres@127.0.0.1:5432/postgres), migrated once, with --users users that each have one
 * confirmed authenticator app (seeded in this process with Nyckel's own code: Accounts hashes the
 * password, SecretBox seals the app secrets with the master key the nodes get). Two nodes are started
 * as separate processes (`node --import tsx src/main.ts`, NODE_ENV=production) with the same
 * environment: that database, the master key, ISSUER = the balancer, a clients file whose first-party
 * app requires TOTP, REDIS_URL with a prefix of this run. The balancer (bench/balancer.ts) sends each
 * request to the next node, so one sign-in's requests land on both nodes and the cookies and the
 * issuer stay one origin.
 *
 * Each sign-in is a new browser: authorize with PKCE → password form → the app's code → code
 * exchanged at the token endpoint (bench/http.ts). A code works once per user and 30-second step, so
 * no user signs in twice within a step (bench/totp-users.ts). Closed loop at --concurrency
 * (bench/load.ts): only node A behind the balancer, then A and B, each after --warmup; the measured
 * --seconds are split into alternating slices of about 5 s (one, two, two, one, …; each slice after
 * --warmup unmeasured) so that other load on the machine hits both setups alike. Prints sign-ins/s,
 * p50, p99, errors, the peak RSS (VmHWM) of each node, CPU per sign-in, how busy the machine was and
 * the ratio two/one, then one JSON line. argon2id runs at the production parameters (m=19456 KiB, t=2): the password check is
 * most of a sign-in's work, as it is in production; --argon2-memory / --argon2-time lower it.
 *
 * The load generator runs in this process and, like the nodes and PostgreSQL, shares the machine's
 * cores: on two cores a second node cannot double the rate. Exits 1 if any sign-in failed (after
 * printing the first error) or the run itself failed. Everything is removed at the end, also on
 * failure or Ctrl-C: the node processes, the database, the temporary directory, the Redis keys.
 *
 * Flags: --seconds N (measured per setup, default 10), --warmup N (default 2), --concurrency N
 * (default 16), --users N (default 3000), --slices N (default: seconds / 5), --argon2-memory KiB and
 * --argon2-time N (default 19456 and 2).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { loadSettings } from '../src/config/settings.ts';
import { newMasterKey } from '../src/security/crypto.ts';
import { startBalancer } from './balancer.ts';
import { logTails, machineTicks, REDIS_URL, removeRedisKeys, startNode, TICK_MS, type NodeProcess } from './nodes.ts';
import { passwordLogin } from './http.ts';
import { numberFlag as number, PRODUCTION_ARGON2, textTable, runInterleaved, type LoadResult } from './load.ts';
import { APP, benchClientsYaml, freshPostgresDatabase, leftover, PASSWORD, removeLeftovers } from './targets.ts';
import { seedTotpUsers, TotpUserPool } from './totp-users.ts';

function options() {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '2' },
      concurrency: { type: 'string', default: '16' },
      users: { type: 'string', default: '3000' },
      slices: { type: 'string' },
      'argon2-memory': { type: 'string', default: String(PRODUCTION_ARGON2.memoryCost) },
      'argon2-time': { type: 'string', default: String(PRODUCTION_ARGON2.timeCost) },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(
      'usage: npm run bench:load -- [--seconds 10] [--warmup 2] [--concurrency 16] [--users 3000] [--slices N] [--argon2-memory 19456] [--argon2-time 2]',
    );
    process.exit(0);
  }
  return {
    seconds: number('seconds', values.seconds, 0.5, 300),
    warmupSeconds: number('warmup', values.warmup, 0, 60),
    concurrency: Math.round(number('concurrency', values.concurrency, 1, 256)),
    users: Math.round(number('users', values.users, 1, 100_000)),
    // About 5 s each: shorter slices would spend most of their time filling and draining the loop.
    slices: values.slices === undefined ? Math.max(1, Math.round(Number(values.seconds) / 5)) : Math.round(number('slices', values.slices, 1, 60)),
    argon2: {
      memoryCost: Math.round(number('argon2-memory', values['argon2-memory'], 8192, 1_048_576)),
      timeCost: Math.round(number('argon2-time', values['argon2-time'], 1, 20)),
    },
    postgresAdminUrl: process.env.BENCH_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres',
  };
}

const started = performance.now();
const progress = (text: string) => process.stderr.write(`bench:load [${((performance.now() - started) / 1000).toFixed(1)} s]: ${text}\n`);
const fixed = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '-');
const round = (n: number) => (Number.isFinite(n) ? Math.round(n * 100) / 100 : null);

interface Measurement {
  label: string;
  result: LoadResult;
  nodes: { name: string; peakRssKiB?: number; requests: number; cpuMs: number }[];
  /** Share of the machine's CPU time (all cores) that was busy during the measured windows. */
  machineBusy: number;
  /** The part of it neither the nodes nor this process used: PostgreSQL, and whatever else ran on the machine. */
  otherBusy: number;
}

/** CPU time of the nodes and of the machine, summed over the measured windows (runLoad's onWindow). */
function newCpuAccount(nodes: readonly NodeProcess[]) {
  const nodeCpuMs = nodes.map(() => 0);
  const machine = { busy: 0, total: 0 };
  let opened: { nodes: number[]; machine: { busy: number; total: number } } | undefined;
  const snapshot = () => ({ nodes: nodes.map((n) => n.cpuMs()), machine: machineTicks() });
  return {
    onWindow: (moment: 'opened' | 'closed') => {
      if (moment === 'opened') {
        opened = snapshot();
        return;
      }
      if (!opened) return;
      const now = snapshot();
      now.nodes.forEach((ms, i) => (nodeCpuMs[i] += ms - opened!.nodes[i]));
      machine.busy += now.machine.busy - opened.machine.busy;
      machine.total += now.machine.total - opened.machine.total;
      opened = undefined;
    },
    totals: () => ({ nodeCpuMs, machine }),
  };
}

const nodeCpuMsPerOp = (m: Measurement) => m.nodes.reduce((sum, n) => sum + n.cpuMs, 0) / m.result.ops;

function table(rows: Measurement[]): string {
  const mib = (kib?: number) => (kib === undefined ? '?' : (kib / 1024).toFixed(0));
  const header = [
    'setup',
    'sign-ins/s',
    'p50 ms',
    'p99 ms',
    'max ms',
    'sign-ins',
    'errors',
    'peak RSS MiB',
    'requests',
    'node CPU ms/op',
    'client CPU ms/op',
    'machine busy',
    'of it other',
  ];
  const body = rows.map((m) => [
    m.label,
    fixed(m.result.perSecond),
    fixed(m.result.p50Ms),
    fixed(m.result.p99Ms),
    fixed(m.result.maxMs),
    String(m.result.ops),
    String(m.result.errors),
    m.nodes.map((n) => mib(n.peakRssKiB)).join(' / '),
    m.nodes.map((n) => n.requests).join(' / '),
    fixed(nodeCpuMsPerOp(m)),
    fixed(m.result.cpuMsPerOp),
    `${fixed(m.machineBusy * 100, 0)}%`,
    `${fixed(m.otherBusy * 100, 0)}%`,
  ]);
  return textTable(header, body);
}

async function main() {
  const opts = options();
  const load = { concurrency: opts.concurrency, seconds: opts.seconds, warmupSeconds: opts.warmupSeconds };
  /** Removes everything created so far (nodes first, then the database, Redis keys, files), then exits (within 20 s). */
  const abandon = (code: number, why: string) => {
    console.error(`bench:load: ${why}`);
    setTimeout(() => process.exit(code), 20_000).unref();
    void removeLeftovers().finally(() => process.exit(code));
  };
  // Each run of the loop is bounded by its warm-up, window and drain limit (15 s); this is the backstop for set-up and tear-down.
  const watchdogMs = ((2 + 2 * opts.slices) * (opts.warmupSeconds + 15) + 2 * opts.seconds) * 1000 + 180_000;
  setTimeout(() => abandon(2, `still running after ${Math.round(watchdogMs / 1000)} s; giving up`), watchdogMs).unref();
  process.once('SIGINT', () => abandon(130, 'interrupted; cleaning up'));
  process.once('SIGTERM', () => abandon(143, 'terminated; cleaning up'));

  const run = crypto.randomBytes(4).toString('hex');
  const redisPrefix = `bench-${run}:`;
  const measurements: Measurement[] = [];
  const runningNodes: NodeProcess[] = [];
  let database = '';
  try {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nyckel-bench-load-'));
    leftover(async () => fs.rmSync(dir, { recursive: true, force: true }));
    leftover(async () => {
      const removed = await removeRedisKeys(redisPrefix).catch((error: Error) => {
        progress(`could not remove the Redis keys ${redisPrefix}*: ${error.message}`);
        return 0;
      });
      if (removed) progress(`removed ${removed} Redis keys ${redisPrefix}*`);
    });
    const postgres = await freshPostgresDatabase(opts.postgresAdminUrl);
    database = `PostgreSQL (${new URL(postgres.url).host}, database ${postgres.name})`;
    const balancer = await startBalancer();
    leftover(() => balancer.close());

    const clientsFile = path.join(dir, 'clients.yaml');
    fs.writeFileSync(clientsFile, benchClientsYaml({ appMfa: '{ required: true, methods: [totp] }' }));
    const env: Record<string, string> = {
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      ISSUER: `http://localhost:${balancer.port}`,
      DATABASE_URL: postgres.url,
      NYCKEL_MASTER_KEY: newMasterKey(),
      NYCKEL_CLIENTS: clientsFile,
      NYCKEL_DATA_DIR: dir,
      NYCKEL_LOG_LEVEL: 'warn',
      NYCKEL_DEMO: 'false',
      // Production refuses the dev outbox; nothing in these sign-ins sends mail, so nothing listens here.
      NYCKEL_MAIL_TRANSPORT: 'smtp',
      NYCKEL_SMTP_URL: 'smtp://127.0.0.1:9',
      NYCKEL_SHUTDOWN_GRACE_SECONDS: '1',
      NYCKEL_ARGON2_MEMORY_KIB: String(opts.argon2.memoryCost),
      NYCKEL_ARGON2_TIME_COST: String(opts.argon2.timeCost),
      REDIS_URL,
      NYCKEL_REDIS_PREFIX: redisPrefix,
    };

    progress(`seeding ${opts.users} users with an authenticator app on ${database}`);
    const pool = new TotpUserPool(await seedTotpUsers(loadSettings(env), opts.users, PASSWORD));

    progress('starting node A, then node B (NODE_ENV=production)');
    const nodeA = await startNode('A', env);
    const nodeB = await startNode('B', env);
    runningNodes.push(nodeA, nodeB);

    const login = passwordLogin({ base: balancer.base, clientId: APP.clientId, secret: APP.secret, redirectUri: APP.redirectUri, users: pool.take });
    const setups = (
      [
        ['one node (A)', [nodeA]],
        ['two nodes (A+B)', [nodeA, nodeB]],
      ] as const
    ).map(([label, nodes]) => ({ label, nodes, ports: nodes.map((n) => n.port), requests: new Map<number, number>(), cpu: newCpuAccount(nodes) }));
    for (const setup of setups) {
      // Fail fast, with the reason, if a sign-in does not work at all.
      balancer.route(setup.ports, setup.requests);
      await login(0);
    }
    progress(
      `one node vs two: ${opts.warmupSeconds} s warm-up each, then ${opts.seconds} s each in ${opts.slices} alternating slice(s) ` +
        `(each after ${opts.warmupSeconds} s unmeasured), at concurrency ${opts.concurrency}`,
    );
    const results = await runInterleaved(
      setups.map((setup) => ({
        name: setup.label,
        operation: (worker: number) => {
          balancer.route(setup.ports, setup.requests);
          return login(worker);
        },
        onWindow: setup.cpu.onWindow,
      })),
      { ...load, slices: opts.slices, sliceWarmupSeconds: opts.warmupSeconds },
    );
    setups.forEach((setup, i) => {
      const { nodeCpuMs, machine } = setup.cpu.totals();
      measurements.push({
        label: setup.label,
        result: results[i],
        nodes: setup.nodes.map((n, j) => ({ name: n.name, peakRssKiB: n.peakRssKiB(), requests: setup.requests.get(n.port) ?? 0, cpuMs: nodeCpuMs[j] })),
        machineBusy: machine.busy / Math.max(1, machine.total),
        otherBusy: (machine.busy * TICK_MS - nodeCpuMs.reduce((sum, ms) => sum + ms, 0) - results[i].cpuMs) / Math.max(1, machine.total * TICK_MS),
      });
    });
  } catch (error) {
    if (runningNodes.length) console.error(logTails(runningNodes));
    throw error;
  } finally {
    progress('stopping the nodes, dropping the database, removing the Redis keys and the temporary directory');
    await removeLeftovers();
  }

  const [one, two] = measurements;
  const ratio = two.result.perSecond / one.result.perSecond;
  const cpus = os.cpus();
  const production = opts.argon2.memoryCost === PRODUCTION_ARGON2.memoryCost && opts.argon2.timeCost === PRODUCTION_ARGON2.timeCost;

  console.log('');
  console.log(
    `Nyckel sign-ins with TOTP through a round-robin balancer: Node ${process.version}, ${os.platform()} ${os.arch()}, ${cpus.length} × ${cpus[0]?.model ?? 'unknown CPU'}`,
  );
  console.log(
    `concurrency ${opts.concurrency}, ${opts.seconds} s measured per setup in ${opts.slices} alternating slice(s), each after ${opts.warmupSeconds} s warm-up; ${opts.users} users; ` +
      `nodes NODE_ENV=production on ${database}, Redis prefix ${redisPrefix}`,
  );
  console.log(
    `argon2id m=${opts.argon2.memoryCost} KiB, t=${opts.argon2.timeCost}, p=1 ` +
      (production ? '(production parameters: the password check is most of the work of a sign-in)' : '(LOWERED from the production m=19456 KiB, t=2)'),
  );
  console.log('sign-in = authorize with PKCE, password form, TOTP code form, code exchange at the token endpoint; each request to the next node');
  console.log('');
  console.log(table(measurements));
  console.log('');
  console.log(`two nodes / one node sign-ins/s = ${fixed(ratio, 2)}`);
  console.log(
    `  peak RSS: each node's VmHWM since it started (A / B); requests: forwarded to each node, warm-up included; CPU per sign-in: ` +
      `the nodes together, and this process (load generator and balancer); PostgreSQL is not counted but is in "machine busy". ` +
      `The nodes, PostgreSQL and this process share ${cpus.length} cores, so a second node adds processes, not cores` +
      (cpus.length <= 2 ? ': a ratio near 1 means the machine, not a node, was the limit.' : '.'),
  );

  console.log('');
  const figures = (m: Measurement) => ({
    perSecond: round(m.result.perSecond),
    p50Ms: round(m.result.p50Ms),
    p99Ms: round(m.result.p99Ms),
    maxMs: round(m.result.maxMs),
    ops: m.result.ops,
    errors: m.result.errors,
    nodeCpuMsPerOp: round(nodeCpuMsPerOp(m)),
    clientCpuMsPerOp: round(m.result.cpuMsPerOp),
    machineBusy: round(m.machineBusy),
    otherBusy: round(m.otherBusy),
    peakRssKiB: m.nodes.map((n) => n.peakRssKiB ?? null),
    requests: m.nodes.map((n) => n.requests),
  });
  console.log(
    JSON.stringify({
      bench: 'nyckel-cluster',
      node: process.version,
      cpus: cpus.length,
      database: 'postgres',
      nodeEnv: 'production',
      concurrency: opts.concurrency,
      seconds: opts.seconds,
      warmupSeconds: opts.warmupSeconds,
      users: opts.users,
      argon2: { ...opts.argon2, parallelism: 1 },
      oneNode: figures(one),
      twoNodes: figures(two),
      ratio: round(ratio),
    }),
  );

  const failed = measurements.find((m) => m.result.errors > 0 || m.result.firstError);
  if (failed) {
    console.error(logTails(runningNodes));
    console.error(
      `bench:load: sign-ins failed (${measurements.reduce((sum, m) => sum + m.result.errors, 0)} in the measured windows); first, in "${failed.label}": ${failed.result.firstError}`,
    );
    return 1;
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error('bench:load: failed:', error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(1);
  },
);
