/**
 * `npm run bench`: Nyckel against its baselines, in one process, over loopback HTTP (127.0.0.1 only).
 *
 *   client_credentials tokens/s   Nyckel vs a bare oidc-provider (in-memory adapter)  target >= 70%
 *   complete password logins/s    Nyckel vs argon2id hashes/s at Nyckel's parameters    target >= 60%
 *   push approval latency         push sent -> sign-in continues, p50/p99 of 100        target p99 < 300 ms
 *
 * Closed loop at a fixed concurrency: after a warm-up, only operations that end inside the measured
 * window count. The two client_credentials targets are measured in alternating one-second slices so
 * that background load on the machine hits both alike; the argon2id baseline and the logins (each
 * login a new cookie jar: authorize with PKCE, login form, first-party consent skip, code exchange)
 * run one after the other. Prints a table, the two ratios with PASS / BELOW TARGET, and one JSON line.
 *
 * Flags: --seconds N (measured window, default 5), --warmup N (default 1), --concurrency N (default 8),
 * --postgres (a fresh database on BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres,
 * dropped at the end; setting BENCH_DATABASE_URL alone also selects PostgreSQL). Default: PGlite in a
 * fresh data directory under the OS temp directory, removed at the end. Then the server as its own
 * process (bench/footprint.ts; the built dist/ when there is one): warm start time, idle RSS, peak RSS
 * at 16 concurrent sign-ins, server CPU per sign-in ÷ one argon2id hash (--no-footprint skips it).
 * Exits 0 once the figures are
 * printed, whether or not the targets are met; 1 if the run itself fails.
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { hash, type Algorithm } from '@node-rs/argon2';
import { clientCredentials, passwordLogin } from './http.ts';
import { numberFlag as number, PRODUCTION_ARGON2, textTable, runInterleaved, runLoad, type LoadResult } from './load.ts';
import { footprintReport } from './footprint-report.ts';
import { PUSH_TARGET_P99_MS, pushLatency } from './push.ts';
import {
  APP,
  MACHINE,
  PASSWORD,
  RESOURCE,
  benchClients,
  removeLeftovers,
  startBareProvider,
  startBenchNyckel,
  type BareProvider,
  type BenchNyckel,
} from './targets.ts';

const TARGETS = { clientCredentials: 0.7, logins: 0.6 };

function options() {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      concurrency: { type: 'string', default: '8' },
      postgres: { type: 'boolean', default: false },
      'no-footprint': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log('usage: npm run bench -- [--seconds 5] [--warmup 1] [--concurrency 8] [--postgres] [--no-footprint]');
    process.exit(0);
  }
  const envUrl = process.env.BENCH_DATABASE_URL || undefined;
  return {
    seconds: number('seconds', values.seconds, 0.5, 300),
    warmupSeconds: number('warmup', values.warmup, 0, 60),
    concurrency: Math.round(number('concurrency', values.concurrency, 1, 256)),
    postgresAdminUrl: values.postgres || envUrl ? (envUrl ?? 'postgres://postgres@127.0.0.1:5432/postgres') : undefined,
    skipFootprint: values['no-footprint'],
  };
}

const started = performance.now();
const progress = (text: string) => process.stderr.write(`bench [${((performance.now() - started) / 1000).toFixed(1)} s]: ${text}\n`);
const fixed = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '-');
const percent = (ratio: number) => (Number.isFinite(ratio) ? `${(ratio * 100).toFixed(1)}%` : 'n/a');

function table(rows: { label: string; result: LoadResult }[]): string {
  const header = ['measurement', 'ops/s', 'p50 ms', 'p99 ms', 'max ms', 'ops', 'errors', 'CPU ms/op'];
  const body = rows.map(({ label, result }) => [
    label,
    fixed(result.perSecond),
    fixed(result.p50Ms),
    fixed(result.p99Ms),
    fixed(result.maxMs),
    String(result.ops),
    String(result.errors),
    fixed(result.cpuMsPerOp, 2),
  ]);
  return textTable(header, body);
}

async function main() {
  const opts = options();
  const load = { concurrency: opts.concurrency, seconds: opts.seconds, warmupSeconds: opts.warmupSeconds };
  let nyckel: BenchNyckel | undefined;
  let bare: BareProvider | undefined;
  const stopAll = () => Promise.allSettled([bare?.stop(), nyckel?.stop()]);
  /** Stops the servers, removes the data directory or drops the database, then exits (within 15 s). */
  const abandon = (code: number, why: string) => {
    console.error(`bench: ${why}`);
    setTimeout(() => process.exit(code), 15_000).unref();
    void stopAll()
      .then(removeLeftovers)
      .finally(() => process.exit(code));
  };
  // Every phase is bounded by its window plus a drain limit; this is the backstop for set-up and tear-down.
  const watchdogMs = 4 * (opts.seconds + opts.warmupSeconds + 15) * 1000 + 180_000;
  setTimeout(() => abandon(2, `still running after ${Math.round(watchdogMs / 1000)} s; giving up`), watchdogMs).unref();
  process.once('SIGINT', () => abandon(130, 'interrupted; cleaning up'));
  process.once('SIGTERM', () => abandon(143, 'terminated; cleaning up'));

  const results: Record<string, LoadResult> = {};
  let database = '';
  let argon2 = { ...PRODUCTION_ARGON2 };
  try {
    progress(`starting Nyckel (${opts.postgresAdminUrl ? 'PostgreSQL' : 'PGlite'}) and a bare oidc-provider`);
    nyckel = await startBenchNyckel({ postgresAdminUrl: opts.postgresAdminUrl });
    database = nyckel.database;
    argon2 = { memoryCost: nyckel.nyckel.settings.argon2.memoryCost, timeCost: nyckel.nyckel.settings.argon2.timeCost };
    if (argon2.memoryCost !== PRODUCTION_ARGON2.memoryCost || argon2.timeCost !== PRODUCTION_ARGON2.timeCost) {
      throw new Error(`Nyckel's default argon2 parameters are ${JSON.stringify(argon2)}, not the production ones this benchmark expects`);
    }
    bare = await startBareProvider(benchClients());

    const users = Array.from({ length: Math.min(opts.concurrency, 16) }, (_, i) => ({ email: `bench-user-${i}@nyckel.example`, password: PASSWORD }));
    progress(`creating ${users.length} users`);
    for (const user of users) await nyckel.nyckel.accounts.create({ ...user, name: 'Bench User' }, { actor: 'bench' });

    const tokenRequest = { clientId: MACHINE.clientId, secret: MACHINE.secret, scope: MACHINE.scope, resource: RESOURCE };
    const bareToken = clientCredentials({ ...tokenRequest, tokenEndpoint: new URL('/token', bare.base) });
    const nyckelToken = clientCredentials({ ...tokenRequest, tokenEndpoint: new URL('/token', nyckel.base) });
    const login = passwordLogin({ base: nyckel.base, clientId: APP.clientId, secret: APP.secret, redirectUri: APP.redirectUri, users });
    const hashOptions = { algorithm: 2 as Algorithm, memoryCost: argon2.memoryCost, timeCost: argon2.timeCost, parallelism: 1 };
    const argon2Hash = async () => {
      await hash(PASSWORD, hashOptions);
    };

    // Fail fast, with the reason, if a flow does not work at all.
    await bareToken();
    await nyckelToken();
    await login(0);

    const slices = Math.max(1, Math.round(opts.seconds));
    progress(
      `client_credentials, bare oidc-provider vs Nyckel: ${opts.warmupSeconds} s warm-up each, then ${opts.seconds} s each ` +
        `in ${slices} alternating slices, at concurrency ${opts.concurrency}`,
    );
    [results.bareClientCredentials, results.nyckelClientCredentials] = await runInterleaved(
      [
        { name: 'client_credentials, bare oidc-provider', operation: bareToken },
        { name: 'client_credentials, Nyckel', operation: nyckelToken },
      ],
      { ...load, slices },
    );
    // Logins take far longer than a slice would be, so these two run one after the other.
    const sequential: [key: string, label: string, operation: (worker: number) => Promise<void>][] = [
      ['argon2idHash', `argon2id hash (m=${argon2.memoryCost} KiB, t=${argon2.timeCost}, p=1)`, argon2Hash],
      ['nyckelLogin', 'password login + code exchange, Nyckel', login],
    ];
    for (const [key, label, operation] of sequential) {
      progress(`${label}: ${opts.warmupSeconds} s warm-up + ${opts.seconds} s at concurrency ${opts.concurrency}`);
      results[key] = await runLoad(label, operation, load);
    }
    for (const result of Object.values(results)) if (result.firstError) progress(`first error in "${result.name}": ${result.firstError}`);
  } finally {
    await stopAll();
    await removeLeftovers();
  }

  const ccRatio = results.nyckelClientCredentials.perSecond / results.bareClientCredentials.perSecond;
  const loginRatio = results.nyckelLogin.perSecond / results.argon2idHash.perSecond;
  const ccCpuRatio = results.bareClientCredentials.cpuMsPerOp / results.nyckelClientCredentials.cpuMsPerOp;
  const loginCpuRatio = results.argon2idHash.cpuMsPerOp / results.nyckelLogin.cpuMsPerOp;
  const verdict = (ratio: number, target: number) => (ratio >= target ? 'PASS' : 'BELOW TARGET');
  const cpus = os.cpus();

  console.log('');
  console.log(
    `Nyckel benchmark: Node ${process.version}, ${os.platform()} ${os.arch()}, ${cpus.length} × ${cpus[0]?.model ?? 'unknown CPU'}, ` +
      `libuv threadpool ${process.env.UV_THREADPOOL_SIZE ?? 4}`,
  );
  console.log(`concurrency ${opts.concurrency}, ${opts.seconds} s measured after ${opts.warmupSeconds} s warm-up; Nyckel on ${database}`);
  console.log('');
  console.log(
    table([
      { label: 'client_credentials, bare oidc-provider', result: results.bareClientCredentials },
      { label: 'client_credentials, Nyckel', result: results.nyckelClientCredentials },
      { label: results.argon2idHash.name, result: results.argon2idHash },
      { label: 'password login + code exchange, Nyckel', result: results.nyckelLogin },
    ]),
  );
  console.log('');
  console.log(
    `Nyckel client_credentials tokens/s = ${percent(ccRatio)} of bare oidc-provider (target >= ${TARGETS.clientCredentials * 100}%): ` +
      `${verdict(ccRatio, TARGETS.clientCredentials)}`,
  );
  console.log(`  p99 ${fixed(results.nyckelClientCredentials.p99Ms)} ms (Nyckel) vs ${fixed(results.bareClientCredentials.p99Ms)} ms (bare oidc-provider)`);
  console.log(
    `  CPU per token ${fixed(results.nyckelClientCredentials.cpuMsPerOp, 2)} ms (Nyckel) vs ${fixed(results.bareClientCredentials.cpuMsPerOp, 2)} ms ` +
      `(bare): by CPU, Nyckel = ${percent(ccCpuRatio)} of bare`,
  );
  console.log(`Nyckel logins/s = ${percent(loginRatio)} of argon2id hashes/s (target >= ${TARGETS.logins * 100}%): ${verdict(loginRatio, TARGETS.logins)}`);
  console.log(`  p99 ${fixed(results.nyckelLogin.p99Ms)} ms (login) vs ${fixed(results.argon2idHash.p99Ms)} ms (argon2id hash)`);
  console.log(
    `  CPU per login ${fixed(results.nyckelLogin.cpuMsPerOp)} ms = ${fixed(results.nyckelLogin.cpuMsPerOp / results.argon2idHash.cpuMsPerOp)} × ` +
      `the ${fixed(results.argon2idHash.cpuMsPerOp)} ms of one argon2id hash: by CPU, Nyckel = ${percent(loginCpuRatio)} of argon2id`,
  );
  console.log(
    '  (the load generator runs in this process: CPU ms/op counts all its threads, server, client and argon2 pool alike, ' + 'but not a PostgreSQL server)',
  );
  const errors = Object.values(results).filter((r) => r.errors > 0);
  for (const r of errors) console.log(`  note: ${r.errors} failed operations in "${r.name}"; first: ${r.firstError}`);

  const round = (n: number) => (Number.isFinite(n) ? Math.round(n * 100) / 100 : null);
  const figures = Object.fromEntries(
    Object.entries(results).map(([key, r]) => [
      key,
      {
        perSecond: round(r.perSecond),
        p50Ms: round(r.p50Ms),
        p99Ms: round(r.p99Ms),
        maxMs: round(r.maxMs),
        ops: r.ops,
        errors: r.errors,
        cpuMsPerOp: round(r.cpuMsPerOp),
      },
    ]),
  );
  console.log('');
  console.log(
    JSON.stringify({
      bench: 'nyckel',
      node: process.version,
      cpus: cpus.length,
      database: opts.postgresAdminUrl ? 'postgres' : 'pglite',
      concurrency: opts.concurrency,
      seconds: opts.seconds,
      warmupSeconds: opts.warmupSeconds,
      argon2: { ...argon2, parallelism: 1 },
      ...figures,
      clientCredentialsRatio: round(ccRatio),
      clientCredentialsTarget: TARGETS.clientCredentials,
      clientCredentialsPass: ccRatio >= TARGETS.clientCredentials,
      clientCredentialsCpuRatio: round(ccCpuRatio),
      loginRatio: round(loginRatio),
      loginTarget: TARGETS.logins,
      loginPass: loginRatio >= TARGETS.logins,
      loginCpuRatio: round(loginCpuRatio),
    }),
  );

  // Push approval: its own Nyckel (PGlite), phone simulator and fake push service; see bench/push.ts.
  const push = await pushLatency({ progress });
  console.log('');
  console.log(
    `Push approval, push sent -> sign-in continues (phone simulator approves at once, page polls every 10 ms), ${push.signIns} sign-ins: ` +
      `p50 ${fixed(push.p50Ms)} ms, p99 ${fixed(push.p99Ms)} ms, max ${fixed(push.maxMs)} ms (target p99 < ${PUSH_TARGET_P99_MS} ms): ` +
      `${push.p99Ms < PUSH_TARGET_P99_MS ? 'PASS' : 'BELOW TARGET'}`,
  );
  console.log(
    `  medians: push arrival -> phone's approval answered ${fixed(push.approveP50Ms)} ms (PIN derivation, signature, check); -> callback ${fixed(push.continueP50Ms)} ms`,
  );
  if (push.errors) console.log(`  note: ${push.errors} failed sign-ins; first: ${push.firstError}`);
  console.log(
    JSON.stringify({
      bench: 'nyckel-push',
      ...push,
      p50Ms: round(push.p50Ms),
      p99Ms: round(push.p99Ms),
      maxMs: round(push.maxMs),
      approveP50Ms: round(push.approveP50Ms),
      continueP50Ms: round(push.continueP50Ms),
      targetP99Ms: PUSH_TARGET_P99_MS,
      pass: push.p99Ms < PUSH_TARGET_P99_MS,
    }),
  );

  // The server as its own process, as production runs it (dist/ when built): start, RSS, CPU per sign-in.
  if (!opts.skipFootprint) {
    await footprintReport({ ...load, concurrency: 16, postgresAdminUrl: opts.postgresAdminUrl, progress });
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error('bench: failed:', error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(1);
  },
);
