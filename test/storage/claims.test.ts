import { beforeAll, describe, expect, test } from '@jest/globals';
import crypto from 'node:crypto';
import { Accounts } from '../../src/accounts/accounts.ts';
import { AuditLog } from '../../src/accounts/audit.ts';
import { suiteDatabase } from '../support/suite-database.ts';

// The OpenID claims of a user (ID tokens and userinfo), on both databases.
const db = suiteDatabase();
let accounts: Accounts;

beforeAll(() => {
  accounts = new Accounts(db.prisma, new AuditLog(db.prisma), { memoryCost: 1024, timeCost: 1 });
});

describe('claims', () => {
  test('the sign-in address and whether it is verified, the first phone number and whether it is, the profile', async () => {
    const user = await db.prisma.user.create({
      data: {
        email: 'anna@claims.example',
        username: 'anna',
        name: 'Anna Svensson',
        locale: 'sv',
        passwordHash: 'x',
        emails: { create: [{ address: 'anna@claims.example', verifiedAt: new Date() }, { address: 'other@claims.example' }] },
      },
    });
    await db.prisma.userPhone.create({ data: { userId: user.id, e164: '+46701112233', verifiedAt: new Date(), createdAt: new Date(Date.now() - 60_000) } });
    await db.prisma.userPhone.create({ data: { userId: user.id, e164: '+46704445566' } });
    expect(await accounts.claims(user)).toEqual({
      sub: user.id,
      email: 'anna@claims.example',
      email_verified: true,
      preferred_username: 'anna',
      name: 'Anna Svensson',
      locale: 'sv',
      phone_number: '+46701112233',
      phone_number_verified: true,
      updated_at: Math.floor(user.updatedAt.getTime() / 1000),
    });
  });

  test('an unverified address and number say so; a user without them has no such claims', async () => {
    const unverified = await db.prisma.user.create({
      data: {
        email: 'bo@claims.example',
        passwordHash: 'x',
        emails: { create: [{ address: 'bo@claims.example' }] },
        phones: { create: [{ e164: '+46707778899' }] },
      },
    });
    expect(await accounts.claims(unverified)).toMatchObject({ email_verified: false, phone_number: '+46707778899', phone_number_verified: false });
    const bare = await db.prisma.user.create({ data: { username: 'cleo', passwordHash: 'x' } });
    const claims = await accounts.claims(bare);
    expect(claims).toEqual({ sub: bare.id, preferred_username: 'cleo', updated_at: Math.floor(bare.updatedAt.getTime() / 1000) });
  });

  test('the account read with its contact details (one statement) gives the same user and claims', async () => {
    const withBoth = await db.prisma.user.create({
      data: {
        email: 'dana@claims.example',
        passwordHash: 'x',
        emails: { create: [{ address: 'dana@claims.example', verifiedAt: new Date() }] },
        phones: { create: [{ e164: '+46701234567', verifiedAt: new Date() }] },
      },
    });
    const unverified = await db.prisma.user.create({
      data: {
        email: 'erik@claims.example',
        passwordHash: 'x',
        emails: { create: [{ address: 'erik@claims.example' }] },
        phones: { create: [{ e164: '+46707654321' }] },
      },
    });
    const bare = await db.prisma.user.create({ data: { username: 'fia', passwordHash: 'x' } });
    for (const user of [withBoth, unverified, bare]) {
      const found = await accounts.findWithContact(user.id);
      expect(found?.user).toEqual(await accounts.findById(user.id));
      expect(await accounts.claims(found!.user, found!.contact)).toEqual(await accounts.claims(user));
    }
    expect(await accounts.claims(withBoth)).toMatchObject({ email_verified: true, phone_number: '+46701234567', phone_number_verified: true });
    expect(await accounts.findWithContact(crypto.randomUUID())).toBeNull();
    expect(await accounts.findWithContact('not-a-uuid')).toBeNull();
  });
});
