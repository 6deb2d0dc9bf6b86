import { describe, expect, test } from '@jest/globals';
import crypto from 'node:crypto';
import { ClientDirectory } from '../../src/clients/directory.ts';
import { parseClientsFile } from '../../src/clients/clients-file.ts';
import { loadSettings } from '../../src/config/settings.ts';
import type { FactorModule } from '../../src/factors/contract.ts';
import { FactorEngine } from '../../src/factors/engine.ts';
import { passwordFactor, SignIns } from '../../src/factors/sign-ins.ts';
import { heldAs, heldFor, heldRows, holds } from '../../src/factors/shared/held-enrolments.ts';
import type { User } from '../../src/generated/prisma/client.ts';
import { driverOf } from '../../src/storage/sql.ts';
import { suiteDatabase } from '../support/suite-database.ts';

// The methods held as enrolment rows are answered from one read of the user's rows: the same answer
// as each module's own `isEnrolled`, and the order the user's rows give.
const db = suiteDatabase();

let counter = 0;
async function newUser(methodOrder: string[] = []): Promise<User> {
  return db.prisma.user.create({ data: { email: `held${++counter}@example.se`, name: 'Held', passwordHash: 'not-a-hash', methodOrder } });
}

async function enrol(user: User, type: string, options: { confirmed?: boolean; used?: boolean; position?: number; createdAt?: Date } = {}) {
  await db.prisma.factorEnrolment.create({
    data: {
      userId: user.id,
      type,
      label: type,
      confirmed: options.confirmed ?? true,
      position: options.position ?? 0,
      lastUsedAt: options.used ? new Date() : null,
      ...(options.createdAt ? { createdAt: options.createdAt } : {}),
    },
  });
}

/** A module held as rows, as the factors build theirs. */
function rowModule(id: string, channel: FactorModule['channel'], type: string, unusedOnly = false): FactorModule {
  return { id, channel, ...heldAs(db.prisma, { type, unusedOnly }) } as unknown as FactorModule;
}

function engineOf(modules: FactorModule[]) {
  const yaml = `clients:\n  - { client_id: app, name: A, token_endpoint_auth_method: none, redirect_uris: [https://a.example/cb], mfa: { required: true, methods: [totp, passkey] } }\n`;
  return new FactorEngine(db.prisma, new Map(modules.map((m) => [m.id, m])), new ClientDirectory(parseClientsFile(yaml, 'c.yaml')), loadSettings({}));
}

const totp = () => rowModule('totp', 'app', 'totp');
const passkey = () => rowModule('passkey', 'device', 'passkey');
const recovery = () => rowModule('recovery-code', 'backup', 'recovery-code', true);

/** An app and a passkey of one position (the passkey newer), a setup never confirmed, a used recovery code. */
async function userWithMixedRows(): Promise<User> {
  const user = await newUser();
  await enrol(user, 'totp', { position: 1, createdAt: new Date('2026-01-01T00:00:00Z') });
  await enrol(user, 'passkey', { position: 1, createdAt: new Date('2026-06-01T00:00:00Z') });
  await enrol(user, 'push-device', { confirmed: false });
  await enrol(user, 'recovery-code', { position: 1000, used: true });
  return user;
}

describe('held enrolments', () => {
  test('confirmed rows only, in the order of position and then newest first', async () => {
    const user = await userWithMixedRows();
    const rows = await heldRows(driverOf(db.prisma), user.id);
    expect(rows).toEqual([
      { type: 'passkey', unused: true },
      { type: 'totp', unused: true },
      { type: 'recovery-code', unused: false },
    ]);
    expect(holds(rows, { type: 'push-device' })).toBe(false);
    expect(holds(rows, { type: 'recovery-code' })).toBe(true);
    expect(holds(rows, { type: 'recovery-code', unusedOnly: true })).toBe(false);
  });

  test("read with the sign-in's record, the rows are the same; the engine judges given rows without reading", async () => {
    const user = await userWithMixedRows();
    const signIns = new SignIns(db.prisma);
    const uid = crypto.randomUUID();
    await signIns.begin(uid, 'app', new Date(Date.now() + 3_600_000), passwordFactor(user.id));
    const loaded = await signIns.loadWithUser(uid);
    expect(loaded?.held).toEqual(await heldRows(driverOf(db.prisma), user.id));
    const bare = await newUser();
    const other = crypto.randomUUID();
    await signIns.begin(other, 'app', new Date(Date.now() + 3_600_000), passwordFactor(bare.id));
    expect((await signIns.loadWithUser(other))?.held).toEqual([]);

    const engine = engineOf([totp(), passkey()]);
    expect((await engine.offered(user, 'app', loaded!.held)).map((m) => m.id)).toEqual(['passkey', 'totp']);
    // Rows given are believed: the engine does not read them again.
    expect((await engine.offered(user, 'app', [{ type: 'totp', unused: true }])).map((m) => m.id)).toEqual(['totp']);
    expect(await engine.offered(user, 'app', [])).toEqual([]);
    // A module's start asks the same way: the rows of the request's context, else the database.
    expect(await heldFor(db.prisma, { user }, { type: 'passkey' })).toBe(true);
    expect(await heldFor(db.prisma, { user, held: [] }, { type: 'passkey' })).toBe(false);
    expect(await heldFor(db.prisma, { user: bare, held: [{ type: 'passkey', unused: true }] }, { type: 'passkey' })).toBe(true);
    expect(await heldFor(db.prisma, { user }, { type: 'recovery-code', unusedOnly: true })).toBe(false);
  });

  test('the engine offers what each module itself says it holds: used-up recovery codes are not offered', async () => {
    const user = await newUser();
    await enrol(user, 'totp');
    await enrol(user, 'recovery-code', { position: 1000, used: true });
    const modules = [totp(), passkey(), recovery()];
    const engine = engineOf(modules);
    const own = await Promise.all(modules.map(async (m) => [m.id, await m.isEnrolled(user)] as const));
    expect(own).toEqual([
      ['totp', true],
      ['passkey', false],
      ['recovery-code', false],
    ]);
    expect((await engine.offered(user, 'app')).map((m) => m.id)).toEqual(['totp']);
    await enrol(user, 'recovery-code', { position: 1000 });
    expect((await engine.offered(user, 'app')).map((m) => m.id)).toEqual(['totp', 'recovery-code']);
    expect(await engine.hasAnySecondFactor(await newUser())).toBe(false);
  });

  test("the user's own order comes first, then the rows' order; backups last", async () => {
    const user = await newUser(['passkey']);
    await enrol(user, 'recovery-code', { position: 0 });
    await enrol(user, 'totp', { position: 0, createdAt: new Date('2026-06-01T00:00:00Z') });
    await enrol(user, 'passkey', { position: 0, createdAt: new Date('2026-01-01T00:00:00Z') });
    const engine = engineOf([totp(), passkey(), recovery()]);
    expect((await engine.methodsOf(user)).map((m) => m.id)).toEqual(['passkey', 'totp', 'recovery-code']);
  });
});
