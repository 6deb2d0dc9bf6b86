import type { PGlite } from '@electric-sql/pglite';
import type pg from 'pg';
import type { PrismaClient } from './db.ts';

/** What one statement gave: its rows, and how many rows it changed (or returned). */
export interface SqlResult<Row> {
  rows: Row[];
  count: number;
}

/**
 * Plain SQL on the connections Prisma itself uses (the pg pool, or the one PGlite), for the few
 * statements every sign-in and token runs: measured on the 2-core build machine, a Prisma model call
 * costs 0.42 ms of CPU and the same statement through the driver 0.11 ms (`bench/statements.ts`).
 * Values come back as the driver parses them: timestamptz as Date, bytea as bytes, json as values.
 * It never joins a Prisma transaction (PGlite's own queries wait for one to end).
 */
export interface SqlDriver {
  query<Row>(text: string, values?: unknown[]): Promise<SqlResult<Row>>;
}

export function poolDriver(pool: pg.Pool): SqlDriver {
  return {
    async query<Row>(text: string, values: unknown[] = []) {
      const result = await pool.query(text, values);
      return { rows: result.rows as Row[], count: result.rowCount ?? 0 };
    },
  };
}

export function pgliteDriver(pglite: PGlite): SqlDriver {
  return {
    async query<Row>(text: string, values: unknown[] = []) {
      const result = await pglite.query<Row>(text, values);
      return { rows: result.rows, count: result.affectedRows ?? result.rows.length };
    },
  };
}

const drivers = new WeakMap<PrismaClient, SqlDriver>();

export function registerDriver(prisma: PrismaClient, driver: SqlDriver): void {
  drivers.set(prisma, driver);
}

/** The driver under a client of `openDatabase`. */
export function driverOf(prisma: PrismaClient): SqlDriver {
  const driver = drivers.get(prisma);
  if (!driver) throw new Error('this Prisma client was not opened by openDatabase: no driver for plain SQL');
  return driver;
}
