import { describe, expect, jest, test } from '@jest/globals';
import { Counter } from '../../src/storage/counters.ts';
import { driverOf } from '../../src/storage/sql.ts';
import { suiteDatabase } from '../support/suite-database.ts';

// The database store of the rate-limit counters (used when Redis is not configured).
const db = suiteDatabase();
let keys = 0;
const newKey = () => `key-${++keys}`;

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

  test('a delete of a key never counted answers false, and the key counts from 1 after a delete', async () => {
    const budget = counter(5);
    const key = newKey();
    expect(await budget.delete(key)).toBe(false);
    await budget.consume(key, 2);
    expect(await budget.delete(key)).toBe(true);
    expect((await budget.consume(key)).consumedPoints).toBe(1);
  });

  test('counts and resets of one moment share one statement, each with its own answer', async () => {
    const accounts = counter(5);
    const addresses = new Counter({ prisma: db.prisma }, { keyPrefix: 'other', points: 1, duration: 60 });
    const [a, b, gone] = [newKey(), newKey(), newKey()];
    await accounts.consume(gone);
    const statements = jest.spyOn(driverOf(db.prisma), 'query');
    try {
      const [first, second, refused, deleted] = await Promise.allSettled([
        accounts.consume(a, 2),
        addresses.consume(b),
        addresses.consume(a, 2),
        accounts.delete(gone),
      ]);
      expect(statements).toHaveBeenCalledTimes(1);
      expect(first).toMatchObject({ status: 'fulfilled', value: { consumedPoints: 2, remainingPoints: 3 } });
      expect(second).toMatchObject({ status: 'fulfilled', value: { consumedPoints: 1 } });
      // The same key name under another prefix is another budget: 2 points of 1 are refused.
      expect(refused).toMatchObject({ status: 'rejected', reason: { consumedPoints: 2, remainingPoints: 0 } });
      expect(deleted).toEqual({ status: 'fulfilled', value: true });
    } finally {
      statements.mockRestore();
    }
    expect(await accounts.get(gone)).toBeNull();
  });

  test('a key asked twice in one moment is counted twice, in the order asked', async () => {
    const budget = counter(10);
    const key = newKey();
    const results = await Promise.all([budget.consume(key), budget.consume(key, 2), budget.delete(key), budget.consume(key)]);
    expect(results.map((r) => (typeof r === 'boolean' ? r : r.consumedPoints))).toEqual([1, 3, true, 1]);
  });

  test('statements over the same keys in any order, at once, all count (keys are locked in one order)', async () => {
    const budget = counter(1000);
    const [a, b, c] = [newKey(), newKey(), newKey()];
    const rounds = Array.from({ length: 30 }, async (_, i) => {
      // Each round a turn of its own, with the keys asked in a different order.
      await new Promise((resolve) => setTimeout(resolve, i % 3));
      const order = i % 2 ? [a, b, c] : [c, b, a];
      await Promise.all(order.map((key) => budget.consume(key)));
    });
    await Promise.all(rounds);
    for (const key of [a, b, c]) expect((await budget.get(key))?.consumedPoints).toBe(30);
  });

  test('a failed statement fails every count in it', async () => {
    const budget = counter(5);
    const statements = jest.spyOn(driverOf(db.prisma), 'query').mockRejectedValueOnce(new Error('connection lost'));
    try {
      const results = await Promise.allSettled([budget.consume(newKey()), budget.consume(newKey())]);
      expect(results).toEqual([
        { status: 'rejected', reason: new Error('connection lost') },
        { status: 'rejected', reason: new Error('connection lost') },
      ]);
    } finally {
      statements.mockRestore();
    }
  });
});
