import { describe, expect, test } from '@jest/globals';
import { verify } from '@node-rs/argon2';
import { Accounts } from '../../src/accounts/accounts.ts';
import { loadSettings } from '../../src/config/settings.ts';
import { Semaphore } from '../../src/security/semaphore.ts';

const tick = () => new Promise((resolve) => setImmediate(resolve));

function gate(): { promise: Promise<void>; resolve(): void } {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => (resolve = done));
  return { promise, resolve };
}

describe('Semaphore', () => {
  test('runs at most `limit` tasks at once, the rest in arrival order, also after a failure', async () => {
    const slots = new Semaphore(2);
    const order: number[] = [];
    const gates = [0, 1, 2, 3].map(gate);
    const runs = gates.map((gate, i) =>
      slots.run(async () => {
        order.push(i);
        await gate.promise;
        if (i === 0) throw new Error('first fails');
        return i;
      }),
    );
    await tick();
    expect(order).toEqual([0, 1]);
    expect(slots.inFlight).toBe(2);
    gates[0].resolve();
    await expect(runs[0]).rejects.toThrow('first fails');
    await tick();
    expect(order).toEqual([0, 1, 2]);
    expect(slots.inFlight).toBe(2);
    gates.forEach((gate) => gate.resolve());
    expect(await Promise.all(runs.slice(1))).toEqual([1, 2, 3]);
    expect(slots.inFlight).toBe(0);
  });

  test('refuses a limit below one', () => {
    expect(() => new Semaphore(0)).toThrow(RangeError);
  });
});

describe('argon2 hashes in flight (NYCKEL_ARGON2_MAX_CONCURRENT)', () => {
  test('Accounts hashes no more passwords at once than its limit, and every hash still verifies', async () => {
    const accounts = new Accounts({} as never, {} as never, { memoryCost: 8192, timeCost: 1, maxConcurrent: 1 });
    const hashes = ['one password here', 'two password here', 'three password here'].map((p) => accounts.hashPassword(p));
    expect(accounts.argon2InFlight).toBe(1);
    const done = await Promise.all(hashes);
    expect(accounts.argon2InFlight).toBe(0);
    expect(await verify(done[2], 'three password here')).toBe(true);
  });

  test('the setting defaults to one per core and is checked', () => {
    expect(loadSettings({}).argon2.maxConcurrent).toBeGreaterThanOrEqual(1);
    expect(loadSettings({ NYCKEL_ARGON2_MAX_CONCURRENT: '3' }).argon2.maxConcurrent).toBe(3);
    expect(() => loadSettings({ NYCKEL_ARGON2_MAX_CONCURRENT: '0' })).toThrow(/NYCKEL_ARGON2_MAX_CONCURRENT/);
  });
});
