import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Accounts } from '../../src/accounts/accounts.ts';
import { AuditLog } from '../../src/accounts/audit.ts';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hash as bcryptHash } from '@node-rs/bcrypt';
import { describeProblems, importUsers, parseImportFile, streamImportFile } from '../../src/accounts/import.ts';
import { sealTotpSecret } from '../../src/factors/totp/index.ts';
import { SecretBox, newMasterKey } from '../../src/security/crypto.ts';
import { openDatabase, type Database } from '../../src/storage/db.ts';
import { applyMigrations } from '../../src/storage/migrate.ts';
import { freshDatabase } from '../support/database.ts';

/** The importer behind `nyckel users import` (and POST /admin/v1/users), on the real database. */
let db: Database;
let drop: () => Promise<void>;
let accounts: Accounts;
let audit: AuditLog;

beforeAll(async () => {
  const fresh = await freshDatabase();
  drop = fresh.drop;
  db = await openDatabase(fresh.target);
  await applyMigrations(db.adapterFactory);
  audit = new AuditLog(db.prisma);
  accounts = new Accounts(db.prisma, audit, { memoryCost: 8192, timeCost: 1 });
});
afterAll(async () => {
  await db?.close();
  await drop?.();
});

const csv = [
  'email,name,locale,phone,password,email_verified,phone_verified',
  'Eva.Lind@scb.example,Eva Lind,sv,+46701234561,a sturdy horse saddle,,yes',
  'not-an-email,Bo,sv,,,,',
  'karl@scb.example,"Karl',
  'Multi-line",en,,,false,',
  'olle@scb.example,Olle,fr,0701,password,maybe,',
  'eva.lind@scb.example,Eva again,,,,,',
  'too@many.example,a,sv,,,,,extra',
  'lisa@scb.example,Lisa,en,,,false,',
  '',
].join('\n');

const snapshot = async () => ({
  users: await db.prisma.user.findMany({ orderBy: { email: 'asc' }, include: { emails: true, phones: true } }),
  events: await db.prisma.auditEvent.count(),
});

describe('parseImportFile', () => {
  test('CSV rows carry the line they start on, also after a quoted cell spanning lines', () => {
    expect(parseImportFile(csv, 'users.csv').map((row) => row.line)).toEqual([2, 3, 4, 6, 7, 8, 9]);
  });

  test('JSON rows carry the line of their element', () => {
    const json = '[\n  {"email": "a@scb.example"},\n\n  {\n    "email": "b"\n  },\n  42\n]\n';
    expect(parseImportFile(json, 'users.json').map((row) => row.line)).toEqual([2, 4, 7]);
  });

  test('a file that cannot be read as rows is refused as a whole, with the reason', () => {
    expect(() => parseImportFile('', 'users.csv')).toThrow('the file is empty');
    expect(() => parseImportFile('email,shoe\na@b.example,42\n', 'users.csv')).toThrow('line 1: unknown column(s) shoe');
    expect(() => parseImportFile('name\nAnna\n', 'users.csv')).toThrow('line 1: the header row has neither an email nor a username column');
    expect(() => parseImportFile('[{"email": ', 'users.json')).toThrow(/^not valid JSON/);
    expect(() => parseImportFile('{"email": "a@b.example"}', 'users.json')).toThrow('the JSON file must be an array of objects');
  });
});

describe('importUsers', () => {
  test('imports the good rows, reports each bad one by line, and a second run changes nothing', async () => {
    const rows = parseImportFile(csv, 'users.csv');
    const report = await importUsers(db.prisma, accounts, audit, rows, { actor: 'cli' });
    expect(report).toMatchObject({ created: 2, existing: 0, invalid: 5 });
    expect(describeProblems(report)).toEqual([
      'line 3: email: is not a valid email address',
      'line 4: name: must not contain line breaks or other control characters',
      'line 6: locale: must be one of sv, da, en',
      'line 6: phone: is not a valid phone number in international form (+46701234567)',
      'line 6: email_verified: must be true or false',
      'line 6: password: is one of the most commonly used passwords; choose another',
      'line 7: email: eva.lind@scb.example is also on line 2',
      'line 8: the row has 8 cells, the header has 7',
    ]);

    const eva = await db.prisma.user.findUniqueOrThrow({ where: { email: 'eva.lind@scb.example' }, include: { emails: true, phones: true } });
    expect(eva).toMatchObject({
      name: 'Eva Lind',
      locale: 'sv',
      emails: [{ address: 'eva.lind@scb.example', verifiedAt: expect.any(Date) }],
      phones: [{ e164: '+46701234561', verifiedAt: expect.any(Date) }],
    });
    expect(await accounts.verifyPassword('eva.lind@scb.example', 'a sturdy horse saddle')).toMatchObject({ id: eva.id });
    const lisa = await db.prisma.user.findUniqueOrThrow({ where: { email: 'lisa@scb.example' }, include: { emails: true } });
    expect(lisa).toMatchObject({ name: 'Lisa', locale: 'en', emails: [{ verifiedAt: null }] });
    // No password in the file: a random one nobody knows (a real hash, so a sign-in costs the same time).
    expect(lisa.passwordHash).toMatch(/^\$argon2id\$/);
    expect(await db.prisma.user.count({ where: { email: 'karl@scb.example' } })).toBe(0);
    expect(await db.prisma.auditEvent.count({ where: { type: 'user.created', data: { path: ['import'], equals: true } } })).toBe(2);

    const before = await snapshot();
    const again = await importUsers(db.prisma, accounts, audit, parseImportFile(csv, 'users.csv'), { actor: 'cli' });
    expect(again).toMatchObject({ created: 0, existing: 2, invalid: 5 });
    expect(again.rows.filter((row) => row.status === 'exists').map((row) => row.line)).toEqual([2, 9]);
    expect(await snapshot()).toEqual(before);
  });

  test('an existing user is left exactly as it is, whatever the file says', async () => {
    await accounts.create({ email: 'maja@scb.example', password: 'a sturdy horse saddle', name: 'Maja' }, { actor: 'test' });
    const before = await snapshot();
    const report = await importUsers(
      db.prisma,
      accounts,
      audit,
      parseImportFile('[{"email": "MAJA@scb.example", "name": "Someone else", "locale": "da"}]', 'u.json'),
      { actor: 'cli' },
    );
    expect(report.rows).toEqual([expect.objectContaining({ line: 1, status: 'exists', email: 'maja@scb.example' })]);
    expect(await snapshot()).toEqual(before);
  });

  test('JSON rows: types are checked and unknown fields named', async () => {
    const json = JSON.stringify(
      [
        { email: 'nora@scb.example', email_verified: 'no', phone_verified: true, phone: '+46701234562' },
        { email: 7 },
        { email: 'x@scb.example', shoe: 42 },
        'text',
      ],
      null,
      1,
    );
    const report = await importUsers(db.prisma, accounts, audit, parseImportFile(json, 'u.json'), { actor: 'cli' });
    expect(report.created).toBe(1);
    expect(describeProblems(report)).toEqual([
      'line 8: email: must be an email address',
      'line 11: unknown field(s) shoe; the fields are email, username, name, locale, phone, password, password_hash, email_verified, phone_verified, totp_secret, totp_digits, totp_period, totp_algorithm',
      'line 15: the element is not an object',
    ]);
    const nora = await db.prisma.user.findUniqueOrThrow({ where: { email: 'nora@scb.example' }, include: { emails: true, phones: true } });
    expect(nora).toMatchObject({ emails: [{ verifiedAt: null }], phones: [{ e164: '+46701234562', verifiedAt: expect.any(Date) }] });
  });

  test('user names: with an address or alone, unique in the file and in the database, and a second run changes nothing', async () => {
    await accounts.create({ username: 'taken-name', password: 'a sturdy horse saddle' }, { actor: 'test' });
    const file = [
      'username,email,password',
      '202100083755,adam@scb.example,a sturdy horse saddle',
      'Name.Alone,,',
      ',,a sturdy horse saddle',
      '２０２１０００８３７５５,other@scb.example,',
      'TAKEN-NAME,,',
      'bad name,,',
      '',
    ].join('\n');
    const report = await importUsers(db.prisma, accounts, audit, parseImportFile(file, 'u.csv'), { actor: 'cli' });
    expect(report).toMatchObject({ created: 2, existing: 1, invalid: 3 });
    expect(describeProblems(report)).toEqual([
      'line 4: email or username: a user needs one of them (or both)',
      'line 5: username: 202100083755 is also on line 2',
      'line 7: username: must not contain "@", spaces or control characters',
    ]);
    expect(report.rows[4]).toMatchObject({ status: 'exists', username: 'taken-name' });
    const alone = await db.prisma.user.findUniqueOrThrow({ where: { username: 'name.alone' }, include: { emails: true } });
    expect(alone).toMatchObject({ email: null, emails: [] });
    expect((await accounts.verifyPassword('202100083755', 'a sturdy horse saddle'))?.email).toBe('adam@scb.example');
    const before = await snapshot();
    const again = await importUsers(db.prisma, accounts, audit, parseImportFile(file, 'u.csv'), { actor: 'cli' });
    expect(again).toMatchObject({ created: 0, existing: 3 });
    expect(await snapshot()).toEqual(before);
  });
});

describe('hashes, apps and large files', () => {
  test('an unreadable hash, a hash with a password, and app settings without a secret are reported by line; nothing is half-imported', async () => {
    const file = [
      'email,password,password_hash,totp_secret,totp_digits',
      'h1@scb.example,,$2b$12$tooShort,,',
      'h2@scb.example,a sturdy horse saddle,$2b$12$tooShort,,',
      'h3@scb.example,,pbkdf2_sha256$many$salt$aGFzaA==,,',
      'h4@scb.example,,,,8',
      'h5@scb.example,,,not base32!,',
      'h6@scb.example,,$pbkdf2-sha256$29000$c2FsdA$,,',
      'h7@scb.example,,$argon2id$v=19$m=8192,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g,,',
      '',
    ].join('\n');
    const report = await importUsers(db.prisma, accounts, audit, parseImportFile(file, 'u.csv'), {
      actor: 'cli',
      sealTotpSecret: sealTotpSecret(new SecretBox(Buffer.from(newMasterKey(), 'base64url'))),
    });
    expect(report).toMatchObject({ created: 0, invalid: 7 });
    expect(describeProblems(report)).toEqual([
      'line 2: password_hash: cannot be read: expected $2b$<cost>$ and 53 characters of salt and hash',
      'line 3: password and password_hash: give one of them, not both',
      'line 4: password_hash: cannot be read: the iteration count is not a number',
      'line 5: totp_digits: needs a totp_secret',
      'line 6: totp_secret: is not base32 (A–Z, 2–7)',
      'line 7: password_hash: cannot be read: the hash is empty',
      'line 8: the row has 7 cells, the header has 5 (a hash with commas, such as $argon2id$…m=…,t=…,p=…, must be quoted)',
    ]);
    expect(await db.prisma.user.count({ where: { email: { startsWith: 'h' } } })).toBe(0);
  });

  test('a streamed CSV in small batches: lines kept, an existing user in a batch reported, hashed rows kept without argon2, a second run changes nothing', async () => {
    const hash = await bcryptHash('a sturdy horse saddle', 8);
    await accounts.create({ email: 'stream3@scb.example', password: 'a sturdy horse saddle' }, { actor: 'test' });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nyckel-import-'));
    const file = path.join(dir, 'users.csv');
    const lines = Array.from({ length: 7 }, (_, i) => `stream${i}@scb.example,"Stream\n${i}",${hash}`);
    fs.writeFileSync(file, ['email,name,password_hash', ...lines, ''].join('\n'));
    const seen: number[] = [];
    const report = await importUsers(db.prisma, accounts, audit, streamImportFile(file), { actor: 'cli', batchSize: 3, onProgress: (n) => seen.push(n) });
    expect(seen).toEqual([3, 6, 7]);
    // Each quoted name spans two lines.
    expect(report.rows.map((row) => [row.line, row.status])).toEqual([
      [2, 'invalid'],
      [4, 'invalid'],
      [6, 'invalid'],
      [8, 'invalid'],
      [10, 'invalid'],
      [12, 'invalid'],
      [14, 'invalid'],
    ]);
    fs.writeFileSync(file, ['email,name,password_hash', ...lines.map((line) => line.replace(/"Stream\n(\d)"/, 'Stream $1')), ''].join('\n'));
    const good = await importUsers(db.prisma, accounts, audit, streamImportFile(file), { actor: 'cli', batchSize: 3 });
    expect(good).toMatchObject({ created: 6, existing: 1, invalid: 0 });
    expect(good.rows.find((row) => row.line === 5)).toMatchObject({ status: 'exists', email: 'stream3@scb.example' });
    expect((await db.prisma.user.findUniqueOrThrow({ where: { email: 'stream6@scb.example' } })).passwordHash).toBe(hash);
    const before = await snapshot();
    expect(await importUsers(db.prisma, accounts, audit, streamImportFile(file), { actor: 'cli', batchSize: 3 })).toMatchObject({ created: 0, existing: 7 });
    expect(await snapshot()).toEqual(before);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
