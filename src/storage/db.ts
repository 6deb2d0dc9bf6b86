import path from 'node:path';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import type { SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils';
import { PrismaClient } from '../generated/prisma/client.ts';
import { loadQueryCompilerFromFile } from './query-compiler.ts';
import { poolDriver, registerDriver } from './sql.ts';

export type { PrismaClient } from '../generated/prisma/client.ts';

export interface Database {
  prisma: PrismaClient;
  kind: 'pglite' | 'postgres';
  /** A driver adapter for the wasm schema engine (migrations), of the same kind the app uses. */
  adapterFactory: SqlMigrationAwareDriverAdapterFactory;
  close(): Promise<void>;
}

export type DatabaseTarget = { kind: 'postgres'; url: string } | { kind: 'pglite'; dataDir: string } | { kind: 'pglite-memory' };

export function databaseTarget(settings: { databaseUrl?: string; dataDir: string }): DatabaseTarget {
  return settings.databaseUrl ? { kind: 'postgres', url: settings.databaseUrl } : { kind: 'pglite', dataDir: path.join(settings.dataDir, 'pgdata') };
}

/**
 * The pg pool of a PostgreSQL server. A connection that breaks (server restart, network cut) is
 * dropped by the pool and the next query opens a new one, so Nyckel recovers without a restart; while
 * the server cannot be reached, a request fails within connectionTimeoutMillis (503, see
 * src/storage/unavailable.ts) instead of waiting for it. Keep-alive notices a peer that vanished
 * without closing the connection.
 */
const poolOptions = { max: 10, connectionTimeoutMillis: 5_000, keepAlive: true, keepAliveInitialDelayMillis: 10_000 };

export async function openDatabase(target: DatabaseTarget): Promise<Database> {
  if (target.kind === 'postgres') {
    // One pool for Prisma and for the plain statements of src/storage/sql.ts.
    const pool = new pg.Pool({ connectionString: target.url, ...poolOptions });
    // An idle connection that breaks is dropped by the pool; the error must not end the process.
    pool.on('error', () => {});
    const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
    loadQueryCompilerFromFile(prisma);
    registerDriver(prisma, poolDriver(pool));
    // The schema engine gets connections of its own, closed when it is done: it leaves Prisma's
    // migration advisory lock on its connection, which in the shared pool would stay held and keep
    // every other node and `nyckel db migrate` waiting.
    const adapterFactory = new PrismaPg({ connectionString: target.url, ...poolOptions });
    return {
      prisma,
      kind: 'postgres',
      adapterFactory,
      close: async () => {
        await prisma.$disconnect();
        await pool.end();
      },
    };
  }
  // PGlite's code is loaded only for an embedded database: a node on PostgreSQL never needs it.
  const { openPGlite } = await import('./pglite-db.ts');
  return openPGlite(target);
}
