import crypto from 'node:crypto';
import pg from 'pg';
import type { DatabaseTarget } from '../../src/storage/db.ts';

export const postgresAdminUrl = process.env.DATABASE_URL_TEST ?? 'postgres://postgres@127.0.0.1:5432/test';

export function testDatabaseKind(): 'pglite' | 'postgres' {
  return process.env.NYCKEL_TEST_DB === 'postgres' ? 'postgres' : 'pglite';
}

/** A fresh, empty database for one suite: in-memory PGlite, or a new database on the PostgreSQL server. */
export async function freshDatabase(): Promise<{ target: DatabaseTarget; drop(): Promise<void> }> {
  if (testDatabaseKind() === 'pglite') return { target: { kind: 'pglite-memory' }, drop: async () => {} };
  const { url, drop } = await freshServerDatabase();
  return { target: { kind: 'postgres', url }, drop };
}

/** A new, empty database on the PostgreSQL server, whatever the project (for suites about the server). */
export async function freshServerDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `nyckel_test_${crypto.randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: postgresAdminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(postgresAdminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: postgresAdminUrl });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}
