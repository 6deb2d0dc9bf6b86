import { performance } from 'node:perf_hooks';

export interface LoadOptions {
  /** Operations in flight at once (closed loop: each worker starts its next one when the last ends). */
  concurrency: number;
  /** Measured window, after the warm-up. */
  seconds: number;
  warmupSeconds: number;
  /** How long to wait for operations still in flight when the window closes before giving up on them. */
  drainMs?: number;
  /** Called when the measured window opens and when it closes (e.g. to read other processes' CPU time). */
  onWindow?: (moment: 'opened' | 'closed') => void;
}

export interface LoadResult {
  name: string;
  /** Operations that succeeded and ended inside the measured window. */
  ops: number;
  errors: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  firstError?: string;
  /**
   * CPU time of the whole process (all threads: server, in-process client, argon2 workers) over the
   * measured window, per counted operation. Less sensitive than ops/s to other load on the machine.
   */
  cpuMsPerOp: number;
  cpuMs: number;
  /** Every counted latency, ascending (for merging slices). */
  latencies: number[];
}

/** argon2id as production runs it (Nyckel's defaults, OWASP's minimum for argon2id). */
export const PRODUCTION_ARGON2 = { memoryCost: 19456, timeCost: 2 };

/** A numeric command-line flag, checked against its range. */
export function numberFlag(name: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name} must be a number from ${min} to ${max}`);
  return n;
}

/** A plain-text table: the first column left-aligned, the others right-aligned, a rule under the header. */
export function textTable(header: string[], body: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index];
}

/**
 * Runs `operation` from `concurrency` workers for warm-up + measured window. Only operations that end
 * inside the window count (throughput and latency); a worker starts nothing new once the window has
 * closed, and whatever is still in flight then is waited for at most `drainMs`.
 */
export async function runLoad(name: string, operation: (worker: number) => Promise<void>, options: LoadOptions): Promise<LoadResult> {
  const start = performance.now();
  const windowStart = start + options.warmupSeconds * 1000;
  const windowEnd = windowStart + options.seconds * 1000;
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;

  const worker = async (index: number) => {
    while (performance.now() < windowEnd) {
      const began = performance.now();
      let ok = true;
      try {
        await operation(index);
      } catch (error) {
        ok = false;
        firstError ??= error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      }
      const ended = performance.now();
      if (ended >= windowStart && ended <= windowEnd) {
        if (ok) latencies.push(ended - began);
        else errors++;
      }
      // A failing operation must not spin the loop: back off a little.
      if (!ok) await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };

  let cpuAtStart = process.cpuUsage();
  let cpuAtEnd: NodeJS.CpuUsage | undefined;
  const close = (): NodeJS.CpuUsage => {
    if (cpuAtEnd) return cpuAtEnd;
    cpuAtEnd = process.cpuUsage(cpuAtStart);
    options.onWindow?.('closed');
    return cpuAtEnd;
  };
  const startTimer = setTimeout(
    () => {
      cpuAtStart = process.cpuUsage();
      options.onWindow?.('opened');
    },
    Math.max(0, windowStart - performance.now()),
  );
  const endTimer = setTimeout(close, Math.max(0, windowEnd - performance.now()));
  const workers = Promise.all(Array.from({ length: options.concurrency }, (_, i) => worker(i)));
  let drainTimer: NodeJS.Timeout | undefined;
  const drainLimit = new Promise<'timeout'>((resolve) => {
    const wait = windowEnd - performance.now() + (options.drainMs ?? 15_000);
    drainTimer = setTimeout(() => resolve('timeout'), Math.max(0, wait));
  });
  const outcome = await Promise.race([workers.then(() => 'done' as const), drainLimit]);
  clearTimeout(drainTimer);
  clearTimeout(startTimer);
  clearTimeout(endTimer);
  const cpu = close();
  const cpuMs = (cpu.user + cpu.system) / 1000;
  if (outcome === 'timeout') {
    firstError ??= 'operations still in flight after the drain limit were abandoned';
  }

  return summarise(name, latencies, errors, options.seconds, cpuMs, firstError);
}

function summarise(name: string, latencies: number[], errors: number, seconds: number, cpuMs: number, firstError?: string): LoadResult {
  latencies.sort((a, b) => a - b);
  return {
    name,
    ops: latencies.length,
    errors,
    seconds,
    perSecond: latencies.length / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: latencies.length ? latencies[latencies.length - 1] : Number.NaN,
    firstError,
    cpuMs,
    cpuMsPerOp: latencies.length ? cpuMs / latencies.length : Number.NaN,
    latencies,
  };
}

/**
 * Measures several operations against each other in alternating slices (A B B A …, each slice
 * `options.seconds / slices` long) after one warm-up of each, so that a change in the machine's
 * background load during the run hits all of them alike. Returns one merged result each.
 * `sliceWarmupSeconds` (default 0) starts every slice with that much unmeasured load: operations of
 * long latency need it, since a closed loop that starts empty counts too few in its first moments.
 * An operation's `onWindow` is called as each of its measured windows opens and closes.
 */
export async function runInterleaved(
  operations: { name: string; operation: (worker: number) => Promise<void>; onWindow?: LoadOptions['onWindow'] }[],
  options: LoadOptions & { slices: number; sliceWarmupSeconds?: number },
): Promise<LoadResult[]> {
  for (const { name, operation } of operations) {
    await runLoad(name, operation, { ...options, seconds: 0, warmupSeconds: options.warmupSeconds });
  }
  const slice = { ...options, seconds: options.seconds / options.slices, warmupSeconds: options.sliceWarmupSeconds ?? 0 };
  const parts: LoadResult[][] = operations.map(() => []);
  for (let i = 0; i < options.slices; i++) {
    // Alternate which goes first, so neither always follows the other.
    const order = i % 2 === 0 ? operations.map((_, j) => j) : operations.map((_, j) => operations.length - 1 - j);
    for (const j of order) parts[j].push(await runLoad(operations[j].name, operations[j].operation, { ...slice, onWindow: operations[j].onWindow }));
  }
  return parts.map((results, j) =>
    summarise(
      operations[j].name,
      results.flatMap((r) => r.latencies),
      results.reduce((sum, r) => sum + r.errors, 0),
      options.seconds,
      results.reduce((sum, r) => sum + r.cpuMs, 0),
      results.find((r) => r.firstError)?.firstError,
    ),
  );
}
