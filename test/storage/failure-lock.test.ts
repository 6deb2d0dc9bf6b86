import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pino from 'pino';
import { FailureLock, type Verdict } from '../../src/factors/shared/failure-lock.ts';
import { openMigratedDatabase } from '../../src/nyckel.ts';
import type { CounterStore } from '../../src/storage/counters.ts';
import type { Database } from '../../src/storage/db.ts';
import { openRedis, type RedisStore } from '../../src/storage/redis.ts';
import { freshDatabase } from '../support/database.ts';
import { freshRedisPrefix, redisTestUrl, testUsesRedis } from '../support/redis.ts';

// Two "nodes": two database clients (and two Redis connections in the postgres project) on one store;
// on PGlite, one process's database, two locks on the one client (their leases kept in its memory).
const quiet = pino({ level: 'silent' });
let nodes: Array<{ db: Database; redis?: RedisStore }>;
let dropDatabase: () => Promise<void>;
const keys = freshRedisPrefix();
const MAX = 5;

beforeAll(async () => {
  const fresh = await freshDatabase();
  dropDatabase = fresh.drop;
  const open = async () => ({
    db: await openMigratedDatabase(fresh.target),
    redis: testUsesRedis() ? await openRedis({ url: redisTestUrl, prefix: keys.prefix }, quiet) : undefined,
  });
  // PGlite in memory is one process's database: one node there.
  nodes = fresh.target.kind === 'postgres' ? [await open(), await open()] : [await open()];
});
afterAll(async () => {
  for (const node of nodes ?? []) {
    await node.redis?.close();
    await node.db.close();
  }
  await dropDatabase?.();
  await keys.drop();
});

const store = (i: number): CounterStore => ({ prisma: nodes[i % nodes.length].db.prisma, redis: nodes[i % nodes.length].redis?.client });
const locks = () => [0, 1].map((i) => new FailureLock(store(i), MAX, 60));
let users = 0;
const newUser = () => `user-${++users}`;

describe('the failure lock under parallel answers', () => {
  test('20 parallel wrong answers: exactly the budget is compared, the rest are refused unread', async () => {
    const [a, b] = locks();
    const user = newUser();
    let compared = 0;
    const wrong = async () => {
      compared += 1;
      await new Promise((resolve) => setTimeout(resolve, 2));
      return { verdict: 'wrong' as Verdict, value: null };
    };
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).judge(user, 'email', wrong)));
    expect(compared).toBe(MAX);
    expect(results.filter((r) => r.locked)).toHaveLength(20 - MAX);
    expect(await a.check(user, 'email')).toMatchObject({ locked: true });
  });

  test('20 parallel right answers to one single-use code: one wins, none counts as wrong, nothing is locked', async () => {
    const [a, b] = locks();
    const user = newUser();
    let used = false;
    const answer = async () => {
      if (used) return { verdict: 'neutral' as Verdict, value: 'used' };
      await new Promise((resolve) => setTimeout(resolve, 2));
      used = true;
      return { verdict: 'right' as Verdict, value: 'verified' };
    };
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).judge(user, 'email', answer)));
    expect(results.filter((r) => r.locked)).toHaveLength(0);
    expect(results.map((r) => (r.locked ? 'locked' : r.value)).sort()).toEqual([...Array(19).fill('used'), 'verified'].sort());
    expect(await a.check(user, 'email')).toEqual({ locked: false, attemptsLeft: MAX });
  });

  test('a right answer clears the count; a neutral one (used, expired) leaves it as it was', async () => {
    const [lock] = locks();
    const user = newUser();
    const verdict = (v: Verdict) => async () => ({ verdict: v, value: null });
    await lock.judge(user, 'totp', verdict('wrong'));
    await lock.judge(user, 'totp', verdict('wrong'));
    await lock.judge(user, 'totp', verdict('neutral'));
    expect(await lock.check(user, 'totp')).toEqual({ locked: false, attemptsLeft: MAX - 2 });
    await lock.judge(user, 'totp', verdict('right'));
    expect(await lock.check(user, 'totp')).toEqual({ locked: false, attemptsLeft: MAX });
  });

  test('families and users are locked apart; a section that throws releases the lock', async () => {
    const [lock] = locks();
    const user = newUser();
    await expect(lock.judge(user, 'sms', async () => Promise.reject(new Error('provider down')))).rejects.toThrow('provider down');
    const after = await lock.judge(user, 'sms', async () => ({ verdict: 'wrong' as Verdict, value: null }));
    expect(after).toMatchObject({ locked: false, attemptsLeft: MAX - 1 });
    expect(await lock.check(user, 'totp')).toEqual({ locked: false, attemptsLeft: MAX });
    expect(await lock.check(newUser(), 'sms')).toEqual({ locked: false, attemptsLeft: MAX });
  });
});
