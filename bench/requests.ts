/**
 * `npm run bench:requests`: where the CPU of a sign-in goes, request by request. The built server
 * runs as its own process (bench/server-process.ts); sign-ins run one after the other, and the CPU
 * every thread of the server used from the start of one request to the start of the next is that
 * request's (from /proc/<pid>/task/*\/schedstat: the main thread, the thread pool that hashes, V8's
 * garbage-collector helpers). Flags: `--postgres`, `--redis`, `--totp` (a user with an authenticator
 * app at an app that asks for its code), `--sign-ins` (200), `--warmup` (40 sign-ins not counted).
 * Prints a table in ms per sign-in and a JSON line.
 */
import { parseArgs } from 'node:util';
import { numberFlag } from './load.ts';
import { MFA_APP, removeLeftovers } from './targets.ts';
import { threadCpuNs, withServerProcess } from './server-process.ts';

const { values } = parseArgs({
  options: {
    postgres: { type: 'boolean', default: false },
    redis: { type: 'boolean', default: false },
    totp: { type: 'boolean', default: false },
    'sign-ins': { type: 'string', default: '200' },
    warmup: { type: 'string', default: '40' },
  },
});
const signIns = Math.round(numberFlag('sign-ins', values['sign-ins'], 1, 100_000));
const warmup = Math.round(numberFlag('warmup', values.warmup, 0, 100_000));

/** CPU (ns) by request label and thread name, attributed from one mark to the next. */
class RequestCpu {
  readonly byRequest = new Map<string, Map<string, number>>();
  private last = new Map<string, number>();
  private label = '';
  counting = false;

  constructor(private readonly pid: number) {}

  /** The CPU since the last mark goes to the request marked then; `next` is the request starting now. */
  mark(next: string) {
    const now = threadCpuNs(this.pid);
    if (this.counting && this.label) {
      const threads = this.byRequest.get(this.label) ?? new Map<string, number>();
      for (const [name, ns] of now) threads.set(name, (threads.get(name) ?? 0) + ns - (this.last.get(name) ?? 0));
      this.byRequest.set(this.label, threads);
    }
    [this.last, this.label] = [now, next];
  }
}

/** A request's label: its method and path, ids (uids, long tokens) replaced. */
const labelOf = (input: string | URL | Request, init?: RequestInit) => {
  const url = new URL(input instanceof Request ? input.url : String(input));
  return `${init?.method ?? 'GET'} ${url.pathname.replace(/[A-Za-z0-9_-]{16,}/g, ':id')}`;
};

async function main() {
  const report = await withServerProcess(
    {
      postgresAdminUrl: values.postgres ? (process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres') : undefined,
      redisUrl: values.redis ? (process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379') : undefined,
      totpUsers: values.totp ? signIns + warmup + 10 : undefined,
      progress: (text) => process.stderr.write(`bench: ${text}\n`),
    },
    async (server) => {
      const signIn = server.appUsers ? server.signIn(MFA_APP, server.appUsers.take) : server.signIn();
      const cpu = new RequestCpu(server.pid);
      const realFetch = globalThis.fetch;
      // The bench's own requests (bench/http.ts) go through fetch: each marks where the previous one's CPU ends.
      globalThis.fetch = (input: string | URL | Request, init?: RequestInit) => {
        cpu.mark(labelOf(input, init));
        return realFetch(input, init);
      };
      try {
        for (let i = 0; i < warmup; i++) await signIn(0);
        await new Promise((resolve) => setTimeout(resolve, 200));
        cpu.mark('');
        cpu.counting = true;
        for (let i = 0; i < signIns; i++) await signIn(0);
        // The last request's trailing work (a write after the response) belongs to it.
        await new Promise((resolve) => setTimeout(resolve, 100));
        cpu.mark('');
      } finally {
        globalThis.fetch = realFetch;
      }
      return cpu.byRequest;
    },
  );
  const perSignIn = (ns: number) => ns / 1e6 / signIns;
  const threads = [...new Set([...report.values()].flatMap((t) => [...t.keys()]))].filter((name) =>
    [...report.values()].some((t) => perSignIn(t.get(name) ?? 0) >= 0.01),
  );
  console.log(`ms of server CPU per sign-in (${signIns} sign-ins one at a time, after ${warmup} not counted):`);
  // A column as wide as its thread's name, so a long one (a profiler's thread) does not run into the next.
  const width = (thread: string) => Math.max(14, thread.length + 2);
  console.log(`${'request'.padEnd(56)}${threads.map((t) => t.padStart(width(t))).join('')}${'all'.padStart(10)}`);
  const rows: Record<string, Record<string, number>> = {};
  for (const [label, byThread] of report) {
    const row = Object.fromEntries(threads.map((t) => [t, Math.round(perSignIn(byThread.get(t) ?? 0) * 100) / 100]));
    const all = Math.round(perSignIn([...byThread.values()].reduce((a, b) => a + b, 0)) * 100) / 100;
    rows[label] = { ...row, all };
    console.log(`${label.padEnd(56)}${threads.map((t) => row[t].toFixed(2).padStart(width(t))).join('')}${all.toFixed(2).padStart(10)}`);
  }
  const total = Object.values(rows).reduce((sum, row) => sum + row.all, 0);
  console.log(`${'a whole sign-in'.padEnd(56)}${' '.repeat(threads.reduce((sum, t) => sum + width(t), 0))}${total.toFixed(2).padStart(10)}`);
  const stores = `${values.postgres ? 'postgres' : 'pglite'}${values.redis ? ' + redis' : ''}`;
  console.log(JSON.stringify({ bench: 'nyckel-requests', node: process.version, stores, totp: values.totp, signIns, msPerSignIn: rows, total }));
}

main().then(
  () => process.exit(0),
  async (error) => {
    console.error('bench: failed:', error instanceof Error ? (error.stack ?? error.message) : error);
    await removeLeftovers();
    process.exit(1);
  },
);
