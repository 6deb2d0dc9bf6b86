import { describe, expect, test } from '@jest/globals';
import { KeyedMutex } from '../../src/storage/mutex.ts';
import { driverOf } from '../../src/storage/sql.ts';
import { suiteDatabase } from '../support/suite-database.ts';

// Where the mutex keeps its leases without Redis: a row on the PostgreSQL server (other nodes see it),
// this process's memory on the embedded database (no other process can open it). Either way every
// mutex on one database shares them, however its store was built (the server's, the command line's).
const db = suiteDatabase();

const leaseRows = async (key: string) => (await driverOf(db.prisma).rows<{ key: string }>`SELECT key FROM rate_limits WHERE key = ${`mutex:${key}`}`).length;

describe('the mutex without Redis', () => {
  test('two mutexes on one database exclude each other; the lease is a row only on the server', async () => {
    const first = new KeyedMutex({ prisma: db.prisma });
    const second = new KeyedMutex({ prisma: db.prisma }, { waitMs: 150 });
    let release = () => {};
    let entered = () => {};
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const held = first.run('user-1', async () => {
      entered();
      await new Promise<void>((resolve) => (release = resolve));
    });
    await inside;

    expect(await leaseRows('user-1')).toBe(db.kind === 'postgres' ? 1 : 0);
    await expect(second.run('user-1', async () => 'ran')).rejects.toMatchObject({ code: 'temporarily_unavailable' });
    expect(await second.run('user-2', async () => 'ran')).toBe('ran');

    release();
    await held;
    expect(await second.run('user-1', async () => 'ran')).toBe('ran');
    expect(await leaseRows('user-1')).toBe(0);
  });
});
