import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { pseudonymOf } from '../../src/accounts/pseudonymise.ts';
import { newMasterKey, SecretBox } from '../../src/security/crypto.ts';
import type { Database } from '../../src/storage/db.ts';
import { runCli, withEmbeddedDatabase } from '../support/cli.ts';
import { rowsNaming, secretsIn } from '../support/personal-data.ts';

/** `nyckel users export` and `nyckel users delete`, one process each, on an embedded database. */
const masterKey = newMasterKey();
const timeout = 120_000;
const email = 'karin.lind@scb.example';
const username = '202100083755';
const phone = '+46701234588';
const password = 'a long and sturdy passphrase';
const totpSecret = 'KARINSTOTPSECRETVALUE234';

let root: string;
let dataDir: string;

const nyckel = (args: string[], input?: string) => runCli({ dataDir, masterKey, clientsFile: path.join(root, 'clients.yaml') }, args, { cwd: root, input });

const withEmbedded = <T>(work: (db: Database) => Promise<T>) => withEmbeddedDatabase(dataDir, work);

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'nyckel-gdpr-'));
  dataDir = path.join(root, 'data');
  fs.writeFileSync(path.join(root, 'clients.yaml'), 'clients: []\n');
});
afterAll(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

describe('nyckel users export and delete', () => {
  let userId: string;

  test(
    'export prints the user’s data as JSON, with no secret',
    async () => {
      const added = await nyckel(
        ['users', 'add', '--email', email, '--username', username, '--name', 'Karin Lind', '--phone', phone, '--password-stdin'],
        `${password}\n`,
      );
      expect(added.code).toBe(0);
      const { passwordHash, sealed } = await withEmbedded(async ({ prisma }) => {
        const user = await prisma.user.findUniqueOrThrow({ where: { email } });
        userId = user.id;
        const secret = new SecretBox(Buffer.from(masterKey, 'base64url')).seal('factor-secret', totpSecret);
        await prisma.factorEnrolment.create({ data: { userId, type: 'totp', label: 'Karin’s phone', confirmed: true, secret } });
        await prisma.auditEvent.create({ data: { userId, type: 'login.succeeded', ip: '198.51.100.23', userAgent: 'Firefox', data: { email } } });
        await prisma.rateLimit.create({ data: { key: `mail-address:${email}`, points: 1, expire: new Date(Date.now() + 60_000) } });
        await prisma.delivery.create({ data: { channel: 'email', recipient: email, purpose: 'account-notice', status: 'sent' } });
        return { passwordHash: user.passwordHash, sealed: Buffer.from(secret).toString('base64') };
      });

      const run = await nyckel(['users', 'export', username]);
      expect(run).toMatchObject({ code: 0, stderr: '' });
      const data = JSON.parse(run.stdout);
      expect(data.profile).toMatchObject({ id: userId, email, username, name: 'Karin Lind' });
      expect(data.phones).toEqual([expect.objectContaining({ number: phone })]);
      expect(data.methods).toEqual([expect.objectContaining({ kind: 'totp', name: 'Karin’s phone' })]);
      expect(data.auditEvents).toEqual(expect.arrayContaining([expect.objectContaining({ type: 'login.succeeded', ip: '198.51.100.23' })]));
      expect(secretsIn(run.stdout, { password, passwordHash, totpSecret, sealed })).toEqual([]);
      const exported = await withEmbedded(({ prisma }) => prisma.auditEvent.findFirst({ where: { userId, type: 'user.data_exported' } }));
      expect(exported?.data).toEqual({ actor: 'cli' });
    },
    timeout,
  );

  test(
    'delete needs a reason, then erases the user at once, leaving only pseudonymised events',
    async () => {
      const missing = await nyckel(['users', 'delete', email]);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain("required option '--reason <text>' not specified");
      const blank = await nyckel(['users', 'delete', email, '--reason', '  ']);
      expect(blank).toMatchObject({ code: 1, stderr: 'nyckel: --reason must say why (it is kept in the audit log)\n' });

      const run = await nyckel(['users', 'delete', email, '--reason', 'asked by letter, case 17']);
      expect(run.code).toBe(0);
      const subject = pseudonymOf(new SecretBox(Buffer.from(masterKey, 'base64url')), userId);
      expect(run.stdout.trim()).toMatch(
        new RegExp(`^erased ${username}: 0 session\\(s\\) ended, 0 grant\\(s\\) revoked, \\d+ audit event\\(s\\) kept as ${subject}$`),
      );

      await withEmbedded(async ({ prisma }) => {
        expect(await rowsNaming(prisma, [userId, email, username, phone, 'Karin Lind'])).toEqual([]);
        const erased = await prisma.auditEvent.findFirstOrThrow({ where: { type: 'user.erased' } });
        expect(erased.data).toMatchObject({ subject, reason: 'asked by letter, case 17', actor: 'cli' });
        const login = await prisma.auditEvent.findFirstOrThrow({ where: { type: 'login.succeeded' } });
        expect(login).toMatchObject({ userId: null, ip: null, userAgent: null, data: { subject } });
      });
      const again = await nyckel(['users', 'delete', email, '--reason', 'again']);
      expect(again).toMatchObject({ code: 1, stderr: `nyckel: no user ${email}\n` });
    },
    timeout,
  );
});
