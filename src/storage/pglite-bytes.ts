import { PGlite, types, type Transaction } from '@electric-sql/pglite';

type QueryOptions = Parameters<PGlite['query']>[2];
type Parsers = NonNullable<NonNullable<QueryOptions>['parsers']>;

/** PostgreSQL's text form of bytea (`\x` and hex) through Buffer's hex codec. */
export function parseBytea(text: string): Uint8Array {
  const bytes = Buffer.from(text.slice(2), 'hex');
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function serializeBytea(value: Uint8Array): string {
  return `\\x${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')}`;
}

const withFastBytea = new WeakMap<Parsers, Parsers>();

function fastByteaOptions(options: QueryOptions): QueryOptions {
  const parsers = options?.parsers;
  if (!parsers?.[types.BYTEA]) return options;
  let fast = withFastBytea.get(parsers);
  if (!fast) withFastBytea.set(parsers, (fast = { ...parsers, [types.BYTEA]: parseBytea }));
  return { ...options, parsers: fast };
}

/**
 * PGlite whose bytea values go through Buffer's hex codec. pglite-prisma-adapter passes a bytea parser
 * that calls parseInt once per byte, and PGlite's own serializer maps every byte to a string: on the
 * sealed oidc-provider payloads (a few kB, read and written several times per sign-in) that was a
 * measurable share of the embedded database's CPU.
 */
export class FastByteaPGlite extends PGlite {
  override query<T>(sql: string, params?: unknown[], options?: QueryOptions) {
    return super.query<T>(sql, params, fastByteaOptions(options));
  }

  override transaction<T>(callback: (tx: Transaction) => Promise<T>): Promise<T> {
    return super.transaction((tx) =>
      callback(
        Object.create(tx, {
          query: { value: <R>(sql: string, params?: unknown[], options?: QueryOptions) => tx.query<R>(sql, params, fastByteaOptions(options)) },
        }) as Transaction,
      ),
    );
  }
}

export const fastByteaSerializers = { [types.BYTEA]: serializeBytea };
/** For queries that pass no parsers of their own (src/storage/sql.ts). */
export const fastByteaParsers = { [types.BYTEA]: parseBytea };
