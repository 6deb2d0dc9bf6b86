import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { FastByteaPGlite } from '../../src/storage/pglite-bytes.ts';
import { PGLITE_OPTIONS } from '../../src/storage/pglite-db.ts';
import { preparedStatements } from '../../src/storage/pglite-prepared.ts';
import { driverOf } from '../../src/storage/sql.ts';
import { suiteDatabase } from '../support/suite-database.ts';

// The plain statements on PGlite (src/storage/pglite-prepared.ts): each text prepared once, values
// as node-postgres prepares them; and the same values through the suite's own database's driver, so
// both databases answer alike.
const db = suiteDatabase();
let pglite: FastByteaPGlite;

beforeAll(async () => {
  pglite = new FastByteaPGlite(PGLITE_OPTIONS);
  await pglite.exec(`CREATE TABLE things (id int PRIMARY KEY, name text UNIQUE)`);
});
afterAll(async () => {
  await pglite.close();
});

const preparedCount = async (text?: string) =>
  (await pglite.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_prepared_statements WHERE $1::text IS NULL OR statement = $1`, [text ?? null])).rows[0]
    .n;

describe('prepared statements on PGlite', () => {
  test('a text run again is parsed once and keeps giving its own answers', async () => {
    const query = preparedStatements(pglite);
    const text = 'SELECT $1::int + 1 AS n';
    expect((await query<{ n: number }>(text, [1])).rows).toEqual([{ n: 2 }]);
    expect((await query<{ n: number }>(text, [41])).rows).toEqual([{ n: 42 }]);
    expect(await preparedCount(text)).toBe(1);
  });

  test('an INSERT counts its rows; a SELECT counts the rows it gives', async () => {
    const query = preparedStatements(pglite);
    expect((await query('INSERT INTO things (id, name) SELECT i, $1 || i FROM generate_series(1, 3) AS i', ['counted-'])).count).toBe(3);
    const selected = await query<{ id: number }>(`SELECT id FROM things WHERE name LIKE 'counted-%' ORDER BY id`);
    expect(selected).toEqual({ rows: [{ id: 1 }, { id: 2 }, { id: 3 }], count: 3 });
  });

  test('a run that fails keeps its name (no statement left behind per failure), and the next run works', async () => {
    const query = preparedStatements(pglite);
    const text = 'INSERT INTO things (id, name) VALUES ($1, $2)';
    await query(text, [100, 'taken']);
    for (const id of [101, 102, 103]) {
      await expect(query(text, [id, 'taken'])).rejects.toMatchObject({ code: '23505' });
    }
    expect(await preparedCount(text)).toBe(1);
    expect((await query(text, [104, 'free'])).count).toBe(1);
    expect((await query<{ name: string }>('SELECT name FROM things WHERE id = $1', [104])).rows).toEqual([{ name: 'free' }]);
  });

  test('a text that does not parse is refused with its error and never kept', async () => {
    const query = preparedStatements(pglite);
    const before = await preparedCount();
    for (let i = 0; i < 3; i++) await expect(query('SELEKT 1')).rejects.toMatchObject({ code: '42601' });
    expect(await preparedCount()).toBe(before);
    expect((await query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  test('texts beyond the limit run unnamed, with the same answers', async () => {
    const query = preparedStatements(pglite, { max: 2 });
    const before = await preparedCount();
    for (let round = 0; round < 2; round++) {
      for (const n of [1, 2, 3, 4]) {
        expect((await query<{ n: number }>(`SELECT $1::int * ${n} AS n`, [10])).rows).toEqual([{ n: 10 * n }]);
      }
    }
    expect((await preparedCount()) - before).toBe(2);
  });

  test("a statement waits for a transaction of PGlite's own: it never reads inside one that is rolled back", async () => {
    const query = preparedStatements(pglite);
    let release = () => {};
    let inserted = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const insertDone = new Promise<void>((resolve) => (inserted = resolve));
    const transaction = pglite.transaction(async (tx) => {
      await tx.query(`INSERT INTO things (id, name) VALUES (200, 'rolled back')`);
      inserted();
      await held;
      throw new Error('roll back');
    });
    await insertDone;
    const read = query<{ name: string }>('SELECT name FROM things WHERE id = $1', [200]);
    await new Promise((resolve) => setTimeout(resolve, 50));
    release();
    await expect(transaction).rejects.toThrow('roll back');
    expect((await read).rows).toEqual([]);
  });
});

describe("values through the database's driver", () => {
  test('bytes, times, JSON, booleans, numbers, arrays and null come back as they went in', async () => {
    const sql = driverOf(db.prisma);
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const at = new Date('2026-12-04T21:30:15.123Z');
    const { rows } = await sql.query<Record<string, unknown>>(
      `SELECT $1::bytea AS bytes, $2::timestamptz AS at, $3::jsonb AS json, $4::boolean AS yes, $5::int8 AS big,
              $6::text[] AS names, $7::text AS nothing, cardinality($6::text[]) AS n`,
      [Buffer.from(bytes), at, { a: [1, 'two'], b: null }, true, 9007199254740991, ['x', 'y, "z"'], null],
    );
    expect(Array.from(rows[0].bytes as Uint8Array)).toEqual(Array.from(bytes));
    expect(rows[0].at).toEqual(at);
    expect(rows[0].json).toEqual({ a: [1, 'two'], b: null });
    expect(rows[0].yes).toBe(true);
    expect(Number(rows[0].big)).toBe(9007199254740991);
    expect(rows[0].names).toEqual(['x', 'y, "z"']);
    expect(rows[0].nothing).toBeNull();
    expect(rows[0].n).toBe(2);
  });
});
