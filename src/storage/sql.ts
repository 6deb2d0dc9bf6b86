import type pg from 'pg';
import type { PrismaClient } from './db.ts';

/** What one statement gave: its rows, and how many rows it gave or changed (its command tag's count, on either database). */
export interface SqlResult<Row> {
  rows: Row[];
  count: number;
}

/**
 * Plain SQL on the connections Prisma itself uses (the pg pool, or the one PGlite), for the few
 * statements every sign-in and token runs: a Prisma model call costs two to three times the CPU of the
 * same statement through the driver (`npm run bench:statements`; the README's "Speed" has the figures).
 * Values come back as the driver parses them: timestamptz as Date, bytea as bytes, json as values.
 * It never joins a Prisma transaction (PGlite's own queries wait for one to end).
 */
export interface SqlDriver {
  query<Row>(text: string, values?: unknown[]): Promise<SqlResult<Row>>;
  /** The rows of a statement written as a template: each `${value}` is a parameter ($1, $2, …), never text. */
  rows<Row>(strings: TemplateStringsArray, ...values: unknown[]): Promise<Row[]>;
  /** How many rows a statement written as a template changed. */
  changed(strings: TemplateStringsArray, ...values: unknown[]): Promise<number>;
  /** The database is this process's alone: the embedded one, whose data directory it holds locked. */
  readonly embedded: boolean;
}

type Query = SqlDriver['query'];

/** The text of a template with its values as numbered parameters. */
export function parameterised(strings: TemplateStringsArray): string {
  return strings.reduce((text, part, i) => `${text}$${i}${part}`);
}

/** A driver over one way of running a statement. */
export function sqlDriver(query: Query, { embedded = false } = {}): SqlDriver {
  return {
    query,
    embedded,
    rows: async <Row>(strings: TemplateStringsArray, ...values: unknown[]) => (await query<Row>(parameterised(strings), values)).rows,
    changed: async (strings: TemplateStringsArray, ...values: unknown[]) => (await query(parameterised(strings), values)).count,
  };
}

export function poolDriver(pool: pg.Pool): SqlDriver {
  return sqlDriver(async <Row>(text: string, values: unknown[] = []) => {
    const result = await pool.query(text, values);
    return { rows: result.rows as Row[], count: result.rowCount ?? 0 };
  });
}

const drivers = new WeakMap<PrismaClient, SqlDriver>();

export function registerDriver(prisma: PrismaClient, driver: SqlDriver): void {
  drivers.set(prisma, driver);
}

/** The driver under a client of `openDatabase`. */
export function driverOf(prisma: PrismaClient): SqlDriver {
  const found = drivers.get(prisma);
  if (!found) throw new Error('this Prisma client was not opened by openDatabase: no driver for plain SQL');
  return found;
}

/** The driver under `db` when it is a client of `openDatabase`, not a transaction (which must stay Prisma's). */
export function driverIfClient(db: object): SqlDriver | undefined {
  return drivers.get(db as PrismaClient);
}
