import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { openMigratedDatabase } from '../../src/nyckel.ts';
import { Counter } from '../../src/storage/counters.ts';
import type { Database } from '../../src/storage/db.ts';
import { freshDatabase } from '../support/database.ts';

// The database store of the rate-limit counters (used when Redis is not configured).
let db: Database;
let dropDatabase: () => Promise<void>;
let keys = 0;
const newKey = () => `key-${++keys}`;

beforeAll(async () => {
  const fresh = await freshDatabase();
  dropDatabase = fresh.drop;
  db = await openMigratedDatabase(fresh.target);
});
afterAll(async () => {
  await db?.close();
  await dropDatabase?.();
});

const counter = (points: number, duration = 60) => new Counter({ prisma: db.prisma }, { keyPrefix: 'test', points, duration });

describe('database counters', () => {
  test('each consume counts once and the budget refuses the one past it', async () => {
    const budget = counter(3);
    const key = newKey();
    const counted = [];
    for (let i = 0; i < 3; i++) counted.push((await budget.consume(key)).consumedPoints);
    expect(counted).toEqual([1, 2, 3]);
    await expect(budget.consume(key)).rejects.toMatchObject({ consumedPoints: 4, remainingPoints: 0 });
  });

  test('parallel consumes are all counted (one statement each, no lost update)', async () => {
    const budget = counter(100);
    const key = newKey();
    await Promise.all(Array.from({ length: 20 }, () => budget.consume(key)));
    expect((await budget.get(key))?.consumedPoints).toBe(20);
  });

  test('a spent window that has expired starts again at the next consume', async () => {
    const budget = counter(2);
    const key = newKey();
    await budget.consume(key);
    await budget.consume(key);
    // Move the window into the past, as if its duration had passed.
    await db.prisma.rateLimit.update({ where: { key: `test:${key}` }, data: { expire: new Date(Date.now() - 1000) } });
    const fresh = await budget.consume(key);
    expect(fresh.consumedPoints).toBe(1);
    expect(fresh.msBeforeNext).toBeGreaterThan(55_000);
  });

  test('reward gives points back inside the window, and delete forgets the key', async () => {
    const budget = counter(5);
    const key = newKey();
    await budget.consume(key, 3);
    expect((await budget.reward(key, 1)).consumedPoints).toBe(2);
    expect(await budget.delete(key)).toBe(true);
    expect(await budget.get(key)).toBeNull();
  });
});
