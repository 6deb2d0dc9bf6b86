import { expect, test } from '@jest/globals';
import { openMigratedDatabase } from '../../src/nyckel.ts';
import { openDatabase, type DatabaseTarget } from '../../src/storage/db.ts';
import { applyMigrationsExclusively } from '../../src/storage/migrate.ts';
import { freshServerDatabase } from '../support/database.ts';

// On the PostgreSQL server whatever the project: a node that has migrated holds no migration lock, so
// the next node (or `nyckel db migrate`) is not kept waiting by its open connections.
test('after migrating, no advisory lock is left held, and a second node migrates the same database at once', async () => {
  const server = await freshServerDatabase();
  const target: DatabaseTarget = { kind: 'postgres', url: server.url };
  const first = await openMigratedDatabase(target);
  const second = await openDatabase(target);
  try {
    const [{ held }] = await first.prisma.$queryRawUnsafe<Array<{ held: number }>>(
      `SELECT count(*)::int AS held FROM pg_locks
        WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    );
    expect(held).toBe(0);
    const began = Date.now();
    expect(await applyMigrationsExclusively(target, second.adapterFactory)).toEqual([]);
    expect(Date.now() - began).toBeLessThan(5_000);
  } finally {
    await second.close();
    await first.close();
    await server.drop();
  }
}, 60_000);
