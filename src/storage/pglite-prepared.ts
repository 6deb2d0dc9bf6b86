import { parse, protocol, type PGlite } from '@electric-sql/pglite';
import pgUtils from 'pg/lib/utils.js';
import type { SqlResult } from './sql.ts';

/** Distinct statement texts kept prepared; a text beyond them runs as an unnamed statement. */
export const MAX_PREPARED_STATEMENTS = 200;

const { serialize } = protocol;
/** Names are unique in the process, so two users of one PGlite never take each other's. */
let named = 0;
const tail = [serialize.describe({ type: 'P' }), serialize.execute({}), serialize.sync()];

function concat(parts: Uint8Array[]): Uint8Array {
  const message = new Uint8Array(parts.reduce((length, part) => length + part.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    message.set(part, offset);
    offset += part.byteLength;
  }
  return message;
}

/**
 * The plain statements of src/storage/sql.ts on PGlite, each as one exchange with the embedded
 * database, and each distinct text prepared once. PGlite's own `query` makes six calls into the
 * database per statement (parse, describe, bind, describe, execute, sync) and parses and plans the
 * text every time; planning a statement reads each of its tables' sizes from the data directory (a
 * file-system call each). Here a statement is parsed once under a name of its own, and every later
 * run is a bind, describe, execute and sync in one message; PostgreSQL keeps its plan (a generic plan
 * from the sixth run on, as for any prepared statement) and re-plans by itself when the schema
 * changes. Values are prepared as node-postgres prepares them, so a statement means the same on both
 * databases.
 */
export function preparedStatements(pglite: PGlite, { max = MAX_PREPARED_STATEMENTS } = {}) {
  const names = new Map<string, string>();

  async function run(text: string, values: unknown[]) {
    let name = names.get(text);
    const fresh = name === undefined && names.size < max;
    if (fresh) name = `nyckel_${++named}`;
    const parts = name === undefined || fresh ? [serialize.parse({ name: name ?? '', text })] : [];
    parts.push(serialize.bind({ statement: name ?? '', values: values.map((value) => pgUtils.prepareValue(value)) }), ...tail);
    const { messages } = await pglite.execProtocol(concat(parts), { syncToFs: false, throwOnError: false });
    // The name is PostgreSQL's once its parse succeeded, even when the run itself failed after it.
    if (fresh && messages.some((message) => message.name === 'parseComplete')) names.set(text, name!);
    const error = messages.find((message) => message instanceof protocol.messages.DatabaseError);
    if (error) throw error;
    return messages;
  }

  return async function query<Row>(text: string, values: unknown[] = []): Promise<SqlResult<Row>> {
    await pglite._checkReady();
    const messages = await pglite._runExclusiveTransaction(() => pglite._runExclusiveQuery(() => run(text, values)));
    await pglite.syncToFs();
    // pglite.parsers holds the fast bytea parser given at construction (PGLITE_OPTIONS).
    const [result] = parse.parseResults(messages, pglite.parsers);
    return { rows: result.rows as Row[], count: result.rowCount ?? 0 };
  };
}
