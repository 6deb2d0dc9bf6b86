import { hash, type Algorithm } from '@node-rs/argon2';
import { measureFootprint, type FootprintOptions } from './footprint.ts';
import { PASSWORD } from './targets.ts';
import { PRODUCTION_ARGON2, runLoad } from './load.ts';

/** The issue's targets (issue 18) for a single node on 2 cores. */
export const FOOTPRINT_TARGETS = {
  idleRssMiB: { pglite: 250, postgres: 150 },
  peakRssMiB: 350,
  startSeconds: 1.5,
  cpuPerSignInHashes: { pglite: 2, postgres: 1.5 },
};

const fixed = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '-');
const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISSED');

/** Measures the footprint and one argon2id hash's CPU (the baseline, same run), prints a summary and a JSON line. */
export async function footprintReport(options: FootprintOptions) {
  const database = options.postgresAdminUrl ? 'postgres' : 'pglite';
  const stores = `${database}${options.redisUrl ? ' + redis' : ''}`;
  const footprint = await measureFootprint(options);
  const hashOptions = { algorithm: 2 as Algorithm, ...PRODUCTION_ARGON2, parallelism: 1 };
  options.progress?.('footprint: argon2id hashes in this process (the baseline)');
  const argon2 = await runLoad('argon2id hash', async () => void (await hash(PASSWORD, hashOptions)), {
    concurrency: 2,
    seconds: Math.min(options.seconds, 3),
    warmupSeconds: 0.5,
  });
  const cpuPerSignInHashes = footprint.serverCpuMsPerSignIn / argon2.cpuMsPerOp;
  const t = FOOTPRINT_TARGETS;
  console.log('');
  console.log(`Nyckel as its own process (${footprint.entry === 'dist' ? 'built, dist/' : 'sources through tsx'}), ${stores}, Node ${process.version}:`);
  console.log(
    `  start to ready: ${fixed(footprint.startSeconds, 2)} s warm (first start, migrating: ${fixed(footprint.firstStartSeconds, 2)} s); target <= ${t.startSeconds} s: ${verdict(footprint.startSeconds <= t.startSeconds)}`,
  );
  console.log(
    `  idle RSS: ${fixed(footprint.idleRssMiB)} MiB; target <= ${t.idleRssMiB[database]} MiB: ${verdict(footprint.idleRssMiB <= t.idleRssMiB[database])}`,
  );
  console.log(
    `  peak RSS at ${options.concurrency} concurrent sign-ins: ${fixed(footprint.peakRssMiB)} MiB; target <= ${t.peakRssMiB} MiB: ${verdict(footprint.peakRssMiB <= t.peakRssMiB)}`,
  );
  console.log(
    `  server CPU per sign-in: ${fixed(footprint.serverCpuMsPerSignIn)} ms = ${fixed(cpuPerSignInHashes, 2)} × one argon2id hash (${fixed(argon2.cpuMsPerOp)} ms); ` +
      `target <= ${t.cpuPerSignInHashes[database]} ×: ${verdict(cpuPerSignInHashes <= t.cpuPerSignInHashes[database])}`,
  );
  console.log(`  system calls per sign-in: ${fixed(footprint.serverSyscallsPerSignIn.reads)} reads, ${fixed(footprint.serverSyscallsPerSignIn.writes)} writes`);
  console.log(
    `  sign-ins: ${fixed(footprint.signIn.perSecond)}/s, p99 ${fixed(footprint.signIn.p99Ms)} ms, ${footprint.signIn.errors} errors${footprint.signIn.firstError ? ` (first: ${footprint.signIn.firstError})` : ''}`,
  );
  const { totp } = footprint;
  const appCodeExtra = totp ? totp.withAppCodeCpuMs / totp.passwordOnlyCpuMs - 1 : NaN;
  if (totp) {
    console.log(
      `  a sign-in with an authenticator app's code: ${fixed(totp.withAppCodeCpuMs)} ms against ${fixed(totp.passwordOnlyCpuMs)} ms with the password only ` +
        `(alternating slices) = ${fixed(appCodeExtra * 100)} % more; target < 10 %: ${verdict(appCodeExtra < 0.1)}${totp.errors ? ` (${totp.errors} errors)` : ''}`,
    );
  }
  const round = (n: number) => (Number.isFinite(n) ? Math.round(n * 100) / 100 : null);
  const figures = {
    bench: 'nyckel-footprint',
    node: process.version,
    database,
    redis: Boolean(options.redisUrl),
    entry: footprint.entry,
    concurrency: options.concurrency,
    startSeconds: round(footprint.startSeconds),
    firstStartSeconds: round(footprint.firstStartSeconds),
    idleRssMiB: round(footprint.idleRssMiB),
    peakRssMiB: round(footprint.peakRssMiB),
    signInsPerSecond: round(footprint.signIn.perSecond),
    signInErrors: footprint.signIn.errors,
    serverCpuMsPerSignIn: round(footprint.serverCpuMsPerSignIn),
    serverReadsPerSignIn: round(footprint.serverSyscallsPerSignIn.reads),
    serverWritesPerSignIn: round(footprint.serverSyscallsPerSignIn.writes),
    argon2CpuMsPerHash: round(argon2.cpuMsPerOp),
    cpuPerSignInHashes: round(cpuPerSignInHashes),
    ...(totp ? { appCodeExtraCpu: round(appCodeExtra), appCodeErrors: totp.errors } : {}),
    targets: t,
  };
  console.log(JSON.stringify(figures));
  return figures;
}
