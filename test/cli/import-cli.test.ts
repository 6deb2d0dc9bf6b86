import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { hash as bcryptHash } from '@node-rs/bcrypt';
import { newMasterKey } from '../../src/security/crypto.ts';
import type { Database } from '../../src/storage/db.ts';
import { runCli, withEmbeddedDatabase } from '../support/cli.ts';
import { projectRoot } from '../support/process.ts';

/** `nyckel users import` with hashes, weak hashes and a Keycloak realm export, as the operator runs it. */
const masterKey = newMasterKey();
const timeout = 120_000;
let root: string;
let dataDir: string;

const nyckel = (args: string[]) => runCli({ dataDir, masterKey, clientsFile: path.join(root, 'clients.yaml') }, args, { cwd: root });

const withEmbedded = <T>(work: (db: Database) => Promise<T>) => withEmbeddedDatabase(dataDir, work);

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'nyckel-import-cli-'));
  dataDir = path.join(root, 'data');
  fs.writeFileSync(path.join(root, 'clients.yaml'), 'clients: []\n');
});
afterAll(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

describe('nyckel users import with hashes', () => {
  test(
    'weak hashes are refused by line, imported without the hash with --allow-weak-hashes; JSON Lines stream; a second run changes nothing',
    async () => {
      const strong = await bcryptHash('a sturdy horse saddle', 10);
      const weak = await bcryptHash('a sturdy horse saddle', 5);
      const md5 = crypto.createHash('md5').update('a sturdy horse saddle').digest('hex');
      fs.writeFileSync(
        path.join(root, 'users.jsonl'),
        [
          JSON.stringify({ email: 'strong@scb.example', password_hash: strong }),
          JSON.stringify({ email: 'weak@scb.example', password_hash: weak }),
          '',
          JSON.stringify({ email: 'md5@scb.example', password_hash: md5 }),
          JSON.stringify({ email: 'broken@scb.example', password_hash: '$2b$10$short' }),
          '',
        ].join('\n'),
      );
      const first = await nyckel(['users', 'import', 'users.jsonl']);
      expect(first).toMatchObject({ code: 1, stderr: '' });
      expect(first.stdout.trimEnd().split('\n')).toEqual([
        'users.jsonl: line 2: password_hash: weak (bcrypt cost 5, lower than 8); refused unless --allow-weak-hashes',
        'users.jsonl: line 4: password_hash: weak (unsalted MD5); refused unless --allow-weak-hashes',
        'users.jsonl: line 5: password_hash: cannot be read: expected $2b$<cost>$ and 53 characters of salt and hash',
        '1 created, 0 already present (left unchanged), 3 bad row(s) skipped',
      ]);

      const allowed = await nyckel(['users', 'import', 'users.jsonl', '--allow-weak-hashes']);
      expect(allowed.stdout.trimEnd().split('\n')).toEqual([
        'users.jsonl: line 5: password_hash: cannot be read: expected $2b$<cost>$ and 53 characters of salt and hash',
        'users.jsonl: line 2 (weak@scb.example): password_hash: weak (bcrypt cost 5, lower than 8), not kept: the user sets a new password',
        'users.jsonl: line 4 (md5@scb.example): password_hash: weak (unsalted MD5), not kept: the user sets a new password',
        '2 created, 1 already present (left unchanged), 1 bad row(s) skipped',
      ]);
      const users = await withEmbedded((db) => db.prisma.user.findMany({ orderBy: { email: 'asc' } }));
      expect(Object.fromEntries(users.map((u) => [u.email, u.passwordHash.slice(0, 10)]))).toEqual({
        'md5@scb.example': '$argon2id$',
        'strong@scb.example': strong.slice(0, 10),
        'weak@scb.example': '$argon2id$',
      });
      // The weak rows' hash is a random password nobody knows, not the weak one.
      expect(users.map((u) => u.passwordHash)).not.toContain(weak);

      const eventsBefore = await withEmbedded((db) => db.prisma.auditEvent.count());
      const again = await nyckel(['users', 'import', 'users.jsonl', '--allow-weak-hashes']);
      expect(again.stdout).toContain('0 created, 3 already present (left unchanged), 1 bad row(s) skipped');
      expect(await withEmbedded((db) => db.prisma.user.findMany({ orderBy: { email: 'asc' } }))).toEqual(users);
      expect(await withEmbedded((db) => db.prisma.auditEvent.count())).toBe(eventsBefore);
    },
    timeout,
  );

  test(
    '--from keycloak: the users of a realm export, with what was not taken listed per user',
    async () => {
      const realm = path.join(projectRoot, 'test/fixtures/keycloak-realm-export.json');
      const run = await nyckel(['users', 'import', '--from', 'keycloak', realm]);
      expect(run.code).toBe(1);
      expect(run.stdout).toContain(`${realm}: line 97: username: must not contain "@", spaces or control characters`);
      expect(run.stdout).toContain(`${realm}: line 21 (kari.nord): not imported: realmRoles auditor`);
      expect(run.stdout).toContain(`${realm}: line 21 (kari.nord): not imported: federatedIdentities google`);
      expect(run.stdout).toContain('2 created, 0 already present (left unchanged), 1 bad row(s) skipped');
      const kari = await withEmbedded((db) => db.prisma.user.findUniqueOrThrow({ where: { username: 'kari.nord' }, include: { factors: true } }));
      expect(kari.factors).toEqual([expect.objectContaining({ type: 'totp', confirmed: true })]);

      fs.writeFileSync(path.join(root, 'not-a-realm.json'), '[{"email": "a@scb.example"}]');
      const notRealm = await nyckel(['users', 'import', '--from', 'keycloak', 'not-a-realm.json']);
      expect(notRealm).toMatchObject({ code: 1, stdout: '' });
      expect(notRealm.stderr.trim()).toBe('nyckel: not-a-realm.json: not a Keycloak realm export: no "users" array (export the realm with its users)');

      const unknown = await nyckel(['users', 'import', '--from', 'okta', realm]);
      expect(unknown.code).not.toBe(0);
      expect(unknown.stderr).toContain("argument 'okta' is invalid. Allowed choices are keycloak.");
    },
    timeout,
  );
});
