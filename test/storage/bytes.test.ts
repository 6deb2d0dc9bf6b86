import { describe, expect, test } from '@jest/globals';
import { parseBytea, serializeBytea } from '../../src/storage/pglite-bytes.ts';
import { driverOf } from '../../src/storage/sql.ts';
import { suiteDatabase } from '../support/suite-database.ts';

// Bytes columns (the sealed oidc-provider payloads) through Prisma, on either database; on PGlite
// through Nyckel's own bytea codec (src/storage/pglite-bytes.ts).
const db = suiteDatabase();

const everyByte = Uint8Array.from({ length: 256 }, (_, i) => i);

describe('bytea codec', () => {
  test('every byte value goes to PostgreSQL text form and back', () => {
    expect(serializeBytea(Uint8Array.of(0, 15, 16, 255))).toBe('\\x000f10ff');
    expect(Array.from(parseBytea(serializeBytea(everyByte)))).toEqual(Array.from(everyByte));
    expect(parseBytea('\\x')).toEqual(new Uint8Array());
  });

  test('a view into a larger buffer is written as the view only', () => {
    const view = new Uint8Array(everyByte.buffer, 10, 3);
    expect(serializeBytea(view)).toBe('\\x0a0b0c');
  });
});

describe('Bytes columns', () => {
  test.each([
    ['every byte value', everyByte],
    ['empty', new Uint8Array()],
    ['a few kilobytes', Uint8Array.from({ length: 6000 }, (_, i) => (i * 7919) % 256)],
  ])('%s: written and read back unchanged, also inside a transaction', async (name, bytes) => {
    const id = `bytes-${name}`;
    await db.prisma.oidcModel.create({ data: { type: 'Test', id, payload: {}, sealed: bytes } });
    const read = await db.prisma.oidcModel.findUniqueOrThrow({ where: { type_id: { type: 'Test', id } }, select: { sealed: true } });
    expect(Array.from(read.sealed!)).toEqual(Array.from(bytes));
    const inTransaction = await db.prisma.$transaction((tx) => tx.oidcModel.findUniqueOrThrow({ where: { type_id: { type: 'Test', id } } }));
    expect(Array.from(inTransaction.sealed!)).toEqual(Array.from(bytes));
    const { rows } = await driverOf(db.prisma).query<{ sealed: Uint8Array }>('SELECT sealed FROM oidc_models WHERE type = $1 AND id = $2', ['Test', id]);
    expect(Array.from(rows[0].sealed)).toEqual(Array.from(bytes));
  });

  test('bytes written through the driver are read back unchanged by Prisma', async () => {
    const id = 'bytes-through-the-driver';
    await driverOf(db.prisma).query(`INSERT INTO oidc_models (type, id, payload, sealed) VALUES ('Test', $1, '{}', $2)`, [id, Buffer.from(everyByte)]);
    const read = await db.prisma.oidcModel.findUniqueOrThrow({ where: { type_id: { type: 'Test', id } }, select: { sealed: true } });
    expect(Array.from(read.sealed!)).toEqual(Array.from(everyByte));
  });
});
