import fs from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { PrismaClient } from '../generated/prisma/client.ts';
import { lockDataDirectory } from './data-dir-lock.ts';
import type { Database, DatabaseTarget } from './db.ts';
import { FastByteaPGlite, fastByteaParsers, fastByteaSerializers } from './pglite-bytes.ts';
import { loadQueryCompilerFromFile } from './query-compiler.ts';
import { preparedStatements } from './pglite-prepared.ts';
import { registerDriver, sqlDriver } from './sql.ts';

/**
 * The embedded PostgreSQL runs single-user in this process's memory, so its buffers are the node's
 * RSS: PostgreSQL's 128 MB shared_buffers default is far more than Nyckel's few small tables need.
 */
export const PGLITE_OPTIONS = {
  startParams: [...PGlite.defaultStartParams, '-c', 'shared_buffers=16MB', '-c', 'wal_buffers=1MB', '-c', 'temp_buffers=1MB', '-c', 'work_mem=2MB'],
  serializers: fastByteaSerializers,
  parsers: fastByteaParsers,
};

/** The embedded database (src/storage/db.ts imports this module only for a PGlite target). */
export async function openPGlite(target: Exclude<DatabaseTarget, { kind: 'postgres' }>): Promise<Database> {
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
  loadQueryCompilerFromFile(prisma);
  registerDriver(prisma, sqlDriver(preparedStatements(pglite), { embedded: true }));
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
