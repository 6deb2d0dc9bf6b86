/**
 * Nyckel as a separate process, as production runs it (bench/server-process.ts): start time, idle
 * RSS, peak RSS and server CPU per sign-in under load (part of `npm run bench`, or alone:
 * `npm run bench:footprint`).
 */
import { runInterleaved, runLoad, type LoadResult } from './load.ts';
import { MFA_APP } from './targets.ts';
import { cpuMs, ioCalls, rssMiB, withServerProcess, type ServerProcessOptions } from './server-process.ts';

type Operation = (worker: number) => Promise<void>;

/** With `totpUsers` (users with an app, seeded), a sign-in with the app's code is also compared to one without. */
export interface FootprintOptions extends ServerProcessOptions {
  concurrency: number;
  seconds: number;
  warmupSeconds: number;
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

export async function measureFootprint(options: FootprintOptions): Promise<Footprint> {
  const progress = options.progress ?? (() => {});
  return withServerProcess({ ...options, progress: (text) => progress(`footprint: ${text}`) }, async (server) => {
    progress('footprint: idle for 3 s');
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const { pid } = server;
    const idleRssMiB = rssMiB(pid);
    let peakRssMiB = idleRssMiB;
    const sampler = setInterval(() => (peakRssMiB = Math.max(peakRssMiB, rssMiB(pid))), 25);
    let cpuAtOpen = 0;
    let cpuAtClose = 0;
    let callsAtOpen = { reads: 0, writes: 0 };
    let callsAtClose = callsAtOpen;
    const login = server.signIn();
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
    const totp = server.appUsers && (await compareAppCode(pid, options, login, server.signIn(MFA_APP, server.appUsers.take)));
    return {
      entry: server.entry,
      firstStartSeconds: server.firstStartSeconds,
      startSeconds: server.startSeconds,
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
  });
}

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
