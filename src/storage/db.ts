import fs from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import type { SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils';
import { PrismaClient } from '../generated/prisma/client.ts';
import { lockDataDirectory } from './data-dir-lock.ts';
import { FastByteaPGlite, fastByteaParsers, fastByteaSerializers } from './pglite-bytes.ts';
import { pgliteDriver, poolDriver, registerDriver } from './sql.ts';

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

/**
 * The embedded PostgreSQL runs single-user in this process's memory, so its buffers are the node's
 * RSS: PostgreSQL's 128 MB shared_buffers default is far more than Nyckel's few small tables need.
 */
export const PGLITE_OPTIONS = {
  startParams: [...PGlite.defaultStartParams, '-c', 'shared_buffers=16MB', '-c', 'wal_buffers=1MB', '-c', 'temp_buffers=1MB', '-c', 'work_mem=2MB'],
  serializers: fastByteaSerializers,
  parsers: fastByteaParsers,
};

export async function openDatabase(target: DatabaseTarget): Promise<Database> {
  if (target.kind === 'postgres') {
    // One pool for Prisma and for the plain statements of src/storage/sql.ts.
    const pool = new pg.Pool({ connectionString: target.url, ...poolOptions });
    // An idle connection that breaks is dropped by the pool; the error must not end the process.
    pool.on('error', () => {});
    const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
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
  let pglite: PGlite;
  let unlock = () => {};
  if (target.kind === 'pglite') {
    fs.mkdirSync(target.dataDir, { recursive: true, mode: 0o700 });
    unlock = lockDataDirectory(target.dataDir);
    pglite = new FastByteaPGlite(target.dataDir, PGLITE_OPTIONS);
  } else {
    pglite = new FastByteaPGlite(PGLITE_OPTIONS);
  }
  await pglite.waitReady.catch((error: unknown) => {
    unlock();
    throw error;
  });
  const adapterFactory = new PrismaPGlite(pglite);
  const prisma = new PrismaClient({ adapter: adapterFactory });
  registerDriver(prisma, pgliteDriver(pglite));
  return {
    prisma,
    kind: 'pglite',
    adapterFactory,
    close: async () => {
      try {
        await prisma.$disconnect();
        await pglite.close();
      } finally {
        unlock();
      }
    },
  };
}
