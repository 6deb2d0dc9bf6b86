import { afterAll, beforeAll } from '@jest/globals';
import { openMigratedDatabase } from '../../src/nyckel.ts';
import type { Database } from '../../src/storage/db.ts';
import { freshDatabase } from './database.ts';

/**
 * A fresh, migrated database of the suite's project (in-memory PGlite, or a new database on the
 * PostgreSQL server), opened before its tests and closed and dropped after them.
 */
export function suiteDatabase(): Database {
  let db: Database | undefined;
  let drop = async () => {};
  beforeAll(async () => {
    const fresh = await freshDatabase();
    drop = fresh.drop;
    db = await openMigratedDatabase(fresh.target);
  });
  afterAll(async () => {
    await db?.close();
    await drop();
  });
  // The suite's tests and hooks read it after beforeAll has opened it.
  return new Proxy({} as Database, {
    get(_target, property) {
      if (!db) throw new Error('the suite database opens in beforeAll');
      return Reflect.get(db, property) as unknown;
    },
  });
}
