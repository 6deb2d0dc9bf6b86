import { describe, expect, test } from '@jest/globals';
import crypto from 'node:crypto';
import { passwordFactor, SignIns } from '../../src/factors/sign-ins.ts';
import { userWhere } from '../../src/accounts/user-rows.ts';
import { driverOf } from '../../src/storage/sql.ts';
import { suiteDatabase } from '../support/suite-database.ts';

// A user read through the driver is the User Prisma reads: every column, the same names and types.
const db = suiteDatabase();

describe('userWhere', () => {
  test('by id, address and user name: exactly what Prisma reads, with every column filled in', async () => {
    const created = await db.prisma.user.create({
      data: {
        email: 'rows@example.se',
        username: 'rows',
        name: 'Row Rowsson',
        passwordHash: '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA',
        status: 'disabled',
        locale: 'da',
        methodOrder: ['totp', 'sms'],
        deletionDueAt: new Date('2027-01-01T00:00:00.000Z'),
      },
    });
    const prismas = await db.prisma.user.findUniqueOrThrow({ where: { id: created.id } });
    expect(Object.values(prismas).every((value) => value !== null)).toBe(true);
    const sql = driverOf(db.prisma);
    expect(await userWhere(sql, 'id', created.id)).toEqual(prismas);
    expect(await userWhere(sql, 'email', 'rows@example.se')).toEqual(prismas);
    expect(await userWhere(sql, 'username', 'rows')).toEqual(prismas);
  });

  test('a sign-in read with its user: the record load reads, and the user Prisma reads', async () => {
    const user = await db.prisma.user.create({ data: { email: 'joined@example.se', passwordHash: 'x', methodOrder: ['totp'] } });
    const signIns = new SignIns(db.prisma);
    const uid = crypto.randomUUID();
    await signIns.begin(uid, 'app', new Date(Date.now() + 3_600_000), passwordFactor(user.id));
    const loaded = await signIns.loadWithUser(uid);
    expect(loaded?.record).toEqual(await signIns.load(uid));
    expect(loaded?.user).toEqual(await db.prisma.user.findUniqueOrThrow({ where: { id: user.id } }));
    expect(await signIns.loadWithUser(crypto.randomUUID())).toBeUndefined();
  });

  test('nothing for an unknown value, and for an id that is no uuid (no query error)', async () => {
    const sql = driverOf(db.prisma);
    expect(await userWhere(sql, 'email', 'nobody@example.se')).toBeNull();
    expect(await userWhere(sql, 'id', '00000000-0000-4000-8000-000000000000')).toBeNull();
    expect(await userWhere(sql, 'id', "1' OR '1'='1")).toBeNull();
  });
});
