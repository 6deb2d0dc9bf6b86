/** The Nyckel nodes of `npm run bench:load`: started as processes, read from /proc, stopped; and the run's Redis keys. */
import fs from 'node:fs';
import { Redis } from 'ioredis';
import { freePort, startServerProcess, type RunningServer } from '../test/support/process.ts';
import { leftover } from './targets.ts';

export const REDIS_URL = 'redis://127.0.0.1:6379';

export interface NodeProcess {
  name: string;
  port: number;
  /** The highest resident set size of the process so far (VmHWM), in KiB. */
  peakRssKiB(): number | undefined;
  /** CPU time (user + system, all threads) the process has used so far. */
  cpuMs(): number;
  /** What it wrote to stdout and stderr (warnings and errors only: NYCKEL_LOG_LEVEL=warn). */
  output(): string;
}

/** The end of each node's log, to show with a failure. */
export function logTails(nodes: NodeProcess[]): string {
  return nodes
    .map((n) => {
      const text = n.output().trim();
      return `node ${n.name} log${text.length > 3000 ? ' (last 3000 characters)' : ''}: ${text ? `\n${text.slice(-3000)}` : '(empty)'}`;
    })
    .join('\n');
}

export function readProc(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

export function peakRssKiB(pid: number): number | undefined {
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(readProc(`/proc/${pid}/status`) ?? '');
  return match ? Number(match[1]) : undefined;
}

/** Linux counts CPU time in clock ticks of 1/100 s (USER_HZ) in /proc. */
export const TICK_MS = 10;

export function processCpuMs(pid: number): number {
  // utime and stime are the 14th and 15th fields; the 2nd, the command, is in parentheses and may hold spaces.
  const fields = (readProc(`/proc/${pid}/stat`) ?? '').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) * TICK_MS;
}

/** Ticks all cores have spent, and of those busy (neither idle nor waiting for I/O), since boot. */
export function machineTicks(): { busy: number; total: number } {
  const ticks = (readProc('/proc/stat') ?? '').split('\n')[0].split(/\s+/).slice(1, 9).map(Number);
  const total = ticks.reduce((sum, n) => sum + n, 0);
  return { busy: total - (ticks[3] ?? 0) - (ticks[4] ?? 0), total };
}

/** SIGTERM (the node's graceful shutdown), SIGKILL if it has not ended within 5 s. */
export async function kill(server: RunningServer): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  server.child.kill('SIGTERM');
  const timer = setTimeout(() => server.child.kill('SIGKILL'), 5000);
  await server.exited();
  clearTimeout(timer);
}

/** `npm start` as a child process on a free loopback port; resolves once /readyz answers 200. */
export async function startNode(name: string, env: Record<string, string>): Promise<NodeProcess> {
  const port = await freePort();
  const server = startServerProcess({ ...env, PORT: String(port) });
  leftover(() => kill(server));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (server.child.exitCode !== null) throw new Error(`node ${name} exited with status ${server.child.exitCode}:\n${server.output()}`);
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(2000) }).then(
      (response) => response.status === 200,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline) throw new Error(`node ${name} not ready on port ${port} after 60 s:\n${server.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const pid = server.child.pid!;
  return { name, port, peakRssKiB: () => peakRssKiB(pid), cpuMs: () => processCpuMs(pid), output: () => server.output() };
}

/** Deletes the keys of this run (SCAN + DEL; they all start with `prefix`). */
export async function removeRedisKeys(prefix: string): Promise<number> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 1, retryStrategy: () => null });
  redis.on('error', () => {});
  try {
    await redis.connect();
    let removed = 0;
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      if (keys.length) removed += await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
    return removed;
  } finally {
    redis.disconnect();
  }
}
