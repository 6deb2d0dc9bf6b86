/**
 * `npm run bench:footprint`: only the separate-process figures of `npm run bench` (start time, idle
 * and peak RSS, server CPU per sign-in as a multiple of one argon2id hash). Same flags as bench/run.ts.
 */
import { parseArgs } from 'node:util';
import { footprintReport } from './footprint-report.ts';
import { numberFlag as number } from './load.ts';
import { removeLeftovers } from './targets.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '16' },
    postgres: { type: 'boolean', default: false },
    redis: { type: 'boolean', default: false },
    totp: { type: 'boolean', default: false },
    sources: { type: 'boolean', default: false },
  },
});
const envUrl = process.env.BENCH_DATABASE_URL || undefined;
footprintReport({
  seconds: number('seconds', values.seconds, 0.5, 300),
  warmupSeconds: number('warmup', values.warmup, 0, 60),
  concurrency: Math.round(number('concurrency', values.concurrency, 1, 256)),
  postgresAdminUrl: values.postgres || envUrl ? (envUrl ?? 'postgres://postgres@127.0.0.1:5432/postgres') : undefined,
  redisUrl: values.redis ? (process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379') : undefined,
  totpUsers: values.totp ? 2000 : undefined,
  sources: values.sources,
  progress: (text) => process.stderr.write(`bench: ${text}\n`),
}).then(
  () => process.exit(0),
  async (error) => {
    console.error('bench: failed:', error instanceof Error ? (error.stack ?? error.message) : error);
    await removeLeftovers();
    process.exit(1);
  },
);
