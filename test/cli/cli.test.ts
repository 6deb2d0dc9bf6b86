import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Accounts } from '../../src/accounts/accounts.ts';
import { AuditLog } from '../../src/accounts/audit.ts';
import { ensureSigningKeys, loadSigningKeys } from '../../src/keys/signing-keys.ts';
import { newMasterKey, SecretBox } from '../../src/security/crypto.ts';
import { openDatabase, type Database } from '../../src/storage/db.ts';
import { projectRoot } from '../support/process.ts';
import { runCli } from '../support/cli.ts';

/**
 * The operator CLI as the operator runs it: `node bin/nyckel.js …` in child processes, on an embedded
 * database in a fresh data directory. The steps share that directory and run in order.
 */
const email = 'anna.svensson@scb.example';
const firstPassword = 'a sturdy horse saddle';
const newPassword = 'another sturdy horse saddle';
const masterKey = newMasterKey();
const argon2 = { memoryCost: 8192, timeCost: 1 };
/** Each command is a new process (tsx, then PGlite's wasm): a few seconds each on a busy machine. */
const timeout = 120_000;

let root: string;
let dataDir: string;
let lockFile: string;
let validClients: string;
let invalidClients: string;
/** The signing keys before `keys rotate`. */
let keysBefore: string[];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function nyckel(args: string[], options: { input?: string; env?: Record<string, string>; cwd?: string } = {}): Promise<Run> {
  return runCli({ dataDir, masterKey, clientsFile: validClients }, args, options);
}

/** A failure as the operator should see it: exit status 1 and one `nyckel: …` line, no stack trace. */
function expectFailure(run: Run, message: string) {
  expect(run).toMatchObject({ code: 1, stdout: '' });
  expect(run.stderr.trim().split('\n')).toEqual([`nyckel: ${message}`]);
}

const openEmbedded = () => openDatabase({ kind: 'pglite', dataDir: path.join(dataDir, 'pgdata') });
const accountsOf = (db: Database) => new Accounts(db.prisma, new AuditLog(db.prisma), argon2);

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'nyckel-cli-'));
  dataDir = path.join(root, 'data');
  lockFile = path.join(dataDir, 'pgdata.lock');
  validClients = path.join(root, 'clients.yaml');
  fs.writeFileSync(
    validClients,
    [
      'clients:',
      '  - client_id: portal',
      '    name: Portal',
      '    redirect_uris: [https://portal.example/cb]',
      '    client_secret: ${PORTAL_SECRET:-portal-secret-portal-secret}',
      '  - client_id: spa',
      '    name: SPA',
      '    token_endpoint_auth_method: none',
      '    redirect_uris: [http://localhost:5173/cb]',
      '    scopes: [openid, reports:read]',
      'resources:',
      '  - identifier: https://api.example/reports',
      '    scopes: [reports:read]',
      '    access_token_ttl: 7200',
      '',
    ].join('\n'),
  );
  invalidClients = path.join(root, 'bad-clients.yaml');
  fs.writeFileSync(invalidClients, ['clients:', '  - client_id: x', '    name: X', '    redirect_uris: [http://x.example/cb]', ''].join('\n'));
});

afterAll(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

describe('nyckel CLI', () => {
  test(
    'commands that need no database: clients check, keys master, usage and settings errors',
    async () => {
      const [ok, okElsewhere, bad, master, usage, settings] = await Promise.all([
        nyckel(['clients', 'check']),
        // From another working directory, with the file named on the command line.
        nyckel(['clients', 'check', validClients], { cwd: root }),
        nyckel(['clients', 'check', invalidClients]),
        nyckel(['keys', 'master']),
        nyckel(['users', 'add', '--email', email, '--frobnicate']),
        nyckel(['users', 'list'], { env: { NYCKEL_MASTER_KEY: 'too-short' } }),
      ]);

      expect(ok).toMatchObject({ code: 0, stderr: '' });
      expect(ok.stdout).toMatch(/^OK: 2 clients, 1 resource in /);
      expect(okElsewhere).toMatchObject({ code: 0, stdout: 'OK: 2 clients, 1 resource in clients.yaml\n' });

      expect(bad).toMatchObject({ code: 1, stdout: '' });
      expect(bad.stderr).toContain('bad-clients.yaml: 2 problems:');
      expect(bad.stderr).toContain('clients[0] (client_id "x").redirect_uris[0]: must use https (http is allowed only for localhost)');
      expect(bad.stderr).toContain('clients[0] (client_id "x").client_secret: is required for client_secret_basic');
      expect(bad.stderr).not.toMatch(/\n\s+at /);

      expect(master.code).toBe(0);
      expect(master.stdout).toMatch(/^[A-Za-z0-9_-]{43}\n$/);
      expect(master.stderr).toContain('NYCKEL_MASTER_KEY');

      expect(usage).toMatchObject({ code: 2, stdout: '' });
      expect(usage.stderr).toBe("nyckel: unknown option '--frobnicate'\n");

      expect(settings.code).toBe(1);
      expect(settings.stderr).toMatch(/^nyckel: invalid configuration in the environment: NYCKEL_MASTER_KEY: must be 32 random bytes/);
    },
    timeout,
  );

  test(
    'db migrate applies the migrations once, then is up to date',
    async () => {
      const migrations = fs
        .readdirSync(path.join(projectRoot, 'prisma/migrations'), { withFileTypes: true })
        .filter((entry) => entry.isDirectory())
        .map((entry) => entry.name);
      const first = await nyckel(['db', 'migrate']);
      expect(first).toMatchObject({ code: 0, stderr: '' });
      for (const name of migrations) expect(first.stdout).toContain(`  ${name}\n`);

      const second = await nyckel(['db', 'migrate']);
      expect(second).toMatchObject({ code: 0, stderr: '' });
      expect(second.stdout).toContain('is up to date');
      expect(fs.existsSync(lockFile)).toBe(false);
    },
    timeout,
  );

  test(
    'users add: stdin password, then refusals with one clear line each',
    async () => {
      const added = await nyckel(
        ['users', 'add', '--email', 'Anna.Svensson@SCB.example', '--password-stdin', '--name', 'Anna Svensson', '--phone', '+46701234567', '--locale', 'sv'],
        { input: `${firstPassword}\n` },
      );
      expect(added).toMatchObject({ code: 0, stderr: '' });
      expect(added.stdout).toMatch(new RegExp(`^added ${email.replace(/\./g, '\\.')} \\(id [0-9a-f-]{36}\\)\n$`));

      // The ones refused before the database is opened can run side by side.
      const [badEmail, badPhone, noPassword, badLocale, common] = await Promise.all([
        nyckel(['users', 'add', '--email', 'not-an-email', '--password-stdin'], { input: firstPassword }),
        nyckel(['users', 'add', '--email', 'b@scb.example', '--phone', '0701234', '--password-stdin'], { input: firstPassword }),
        nyckel(['users', 'add', '--email', 'b@scb.example', '--password-stdin'], { input: '' }),
        nyckel(['users', 'add', '--email', 'b@scb.example', '--locale', 'fr', '--password-stdin'], { input: firstPassword }),
        nyckel(['users', 'add', '--email', 'b@scb.example', '--password-stdin'], { input: 'password123\n' }),
      ]);
      expectFailure(badEmail, 'email "not-an-email" is not a valid email address');
      expectFailure(badPhone, 'phone "0701234" is not a valid phone number in international form (+46701234567)');
      expect(noPassword.code).toBe(1);
      expect(noPassword.stderr).toMatch(/^nyckel: no password on stdin \(--password-stdin\)/);
      expect(badLocale.code).toBe(2);
      expect(badLocale.stderr).toContain("'fr' is invalid. Allowed choices are sv, da, en.");
      expectFailure(common, 'password is one of the most commonly used passwords; choose another');

      const again = await nyckel(['users', 'add', '--email', email, '--password-stdin'], { input: `${firstPassword}\n` });
      expectFailure(again, `a user with the email ${email} already exists`);
    },
    timeout,
  );

  test(
    'users list, disable and enable (and a stale lock is taken over)',
    async () => {
      // A lock left by a process that has ended.
      const deadPid = spawnSync(process.execPath, ['-e', '']).pid;
      fs.writeFileSync(lockFile, `${deadPid}\n`);

      const list = await nyckel(['users', 'list']);
      expect(list).toMatchObject({ code: 0, stderr: '' });
      const [header, row, ...rest] = list.stdout.trimEnd().split('\n');
      expect(header.split(/\s{2,}/)).toEqual(['USERNAME', 'EMAIL', 'NAME', 'STATUS', 'LOCALE', 'CREATED']);
      expect(row.split(/\s{2,}/)).toEqual(['-', email, 'Anna Svensson', 'active', 'sv', expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)]);
      expect(rest).toEqual([]);
      expect(fs.existsSync(lockFile)).toBe(false);

      const disabled = await nyckel(['users', 'disable', email]);
      expect(disabled).toMatchObject({ code: 0, stdout: `disabled ${email}\n`, stderr: '' });

      const json = await nyckel(['users', 'list', '--json']);
      expect(json.code).toBe(0);
      const users = JSON.parse(json.stdout) as Array<Record<string, unknown>>;
      expect(users).toEqual([expect.objectContaining({ email, name: 'Anna Svensson', status: 'disabled', locale: 'sv', phones: ['+46701234567'] })]);
      expect(json.stdout).not.toContain('argon2');

      const enabled = await nyckel(['users', 'enable', email]);
      expect(enabled).toMatchObject({ code: 0, stdout: `enabled ${email}\n`, stderr: '' });
    },
    timeout,
  );

  test(
    'users set-password',
    async () => {
      const weak = await nyckel(['users', 'set-password', email, '--password-stdin'], { input: 'short\n' });
      expectFailure(weak, 'password must be at least 8 characters (15 or more is better)');

      const set = await nyckel(['users', 'set-password', email, '--password-stdin'], { input: `${newPassword}\n` });
      expect(set).toMatchObject({ code: 0, stdout: `password set for ${email}\n`, stderr: '' });
    },
    timeout,
  );

  test(
    'contact addresses: add (verified or not), list, verify, remove; remembered browsers forgotten',
    async () => {
      const added = await nyckel(['users', 'add-email', email, 'Kontakt@SCB.example']);
      expect(added).toMatchObject({ code: 0, stdout: `added kontakt@scb.example to ${email} (not verified yet)\n` });
      expect((await nyckel(['users', 'add-email', email, 'ekonomi@scb.example', '--verified'])).code).toBe(0);
      expectFailure(await nyckel(['users', 'add-email', email, 'kontakt@scb.example']), `kontakt@scb.example is already registered for ${email}`);
      expectFailure(
        await nyckel(['users', 'add-email', email, 'fourth@scb.example']),
        `${email} already has 3 addresses, the most allowed (NYCKEL_MAX_CONTACT_EMAILS)`,
      );
      expect((await nyckel(['users', 'add-email', email, 'not-an-address'])).code).toBe(1);

      let list = await nyckel(['users', 'emails', email]);
      expect(list.stdout).toMatch(/kontakt@scb\.example\s+no/);
      expect(list.stdout).toMatch(/ekonomi@scb\.example\s+\d{4}-/);
      expect((await nyckel(['users', 'verify-email', email, 'kontakt@scb.example'])).code).toBe(0);
      list = await nyckel(['users', 'emails', email]);
      expect(list.stdout).not.toMatch(/kontakt@scb\.example\s+no/);

      expectFailure(await nyckel(['users', 'remove-email', email, email]), 'the sign-in address cannot be removed; change it instead');
      expect((await nyckel(['users', 'remove-email', email, 'ekonomi@scb.example'])).code).toBe(0);
      expectFailure(await nyckel(['users', 'remove-email', email, 'ekonomi@scb.example']), `ekonomi@scb.example is not registered for ${email}`);

      const forgot = await nyckel(['users', 'forget-browsers', email]);
      expect(forgot).toMatchObject({ code: 0, stdout: `revoked 0 remembered browser(s) of ${email}\n` });
    },
    timeout,
  );

  test(
    'the embedded database is refused while another process holds it',
    async () => {
      const db = await openEmbedded();
      try {
        expect(fs.readFileSync(lockFile, 'utf8').trim()).toBe(String(process.pid));
        const refused = await nyckel(['users', 'list']);
        expectFailure(
          refused,
          `the embedded database in ${path.join(dataDir, 'pgdata')} is in use by process ${process.pid} (a running Nyckel?). Stop it first, or use PostgreSQL with DATABASE_URL.`,
        );

        // Meanwhile, what the earlier commands left: the new password (only one trailing newline was
        // dropped from stdin) and the audit trail.
        const accounts = accountsOf(db);
        expect(await accounts.verifyPassword(email, newPassword)).toMatchObject({ email, status: 'active' });
        expect(await accounts.verifyPassword(email, firstPassword)).toBeNull();
        const events = await db.prisma.auditEvent.findMany({ orderBy: { createdAt: 'asc' } });
        expect(events.map((e) => [e.type, (e.data as { actor?: string }).actor])).toEqual([
          ['user.created', 'cli'],
          ['user.disabled', 'cli'],
          ['user.enabled', 'cli'],
          ['user.password_changed', 'cli'],
          ['user.email_added', 'cli'],
          ['user.email_added', 'cli'],
          ['user.email_verified', 'cli'],
          ['user.email_removed', 'cli'],
          ['user.browsers_forgotten', 'cli'],
        ]);

        // The keys a first server start would have made, for the rotation below.
        const box = new SecretBox(Buffer.from(masterKey, 'base64url'));
        await ensureSigningKeys(db.prisma, box);
        keysBefore = (await loadSigningKeys(db.prisma, box)).keys.map((k) => k.kid!);
        expect(keysBefore).toHaveLength(2);
      } finally {
        await db.close();
      }
      expect(fs.existsSync(lockFile)).toBe(false);
    },
    timeout,
  );

  test(
    'keys rotate: new keys first, the old ones still published; refused under another master key',
    async () => {
      const before = keysBefore;
      const wrongKey = await nyckel(['keys', 'rotate'], { env: { NYCKEL_MASTER_KEY: newMasterKey() } });
      expectFailure(
        wrongKey,
        "the signing keys in the database cannot be decrypted with this master key (is NYCKEL_MASTER_KEY the server's?); nothing was changed",
      );

      const started = Date.now();
      const rotated = await nyckel(['keys', 'rotate']);
      expect(rotated).toMatchObject({ code: 0, stderr: '' });
      const added = /^new signing keys: (\S+), (\S+)$/m.exec(rotated.stdout)!.slice(1);
      expect(added).toEqual([expect.stringMatching(/^es256-/), expect.stringMatching(/^rs256-/)]);
      const retired = /^retired: (\S+), (\S+) \(published until (\S+)\)$/m.exec(rotated.stdout)!;
      expect(retired.slice(1, 3).sort()).toEqual([...before].sort());
      // Default ID token and access token lifetimes: one hour.
      const publishUntil = Date.parse(retired[3]);
      // The longest token lifetime: the Reports API's 2-hour JWT access tokens.
      expect(publishUntil).toBeGreaterThanOrEqual(started + 7200_000 - 1000);
      expect(publishUntil).toBeLessThanOrEqual(Date.now() + 7200_000);
      expect(rotated.stdout).toContain('SIGHUP');

      const box = new SecretBox(Buffer.from(masterKey, 'base64url'));
      const db = await openEmbedded();
      try {
        const after = (await loadSigningKeys(db.prisma, box)).keys.map((k) => k.kid!);
        expect(after.slice(0, 2).sort()).toEqual([...added].sort());
        expect(after.slice(2).sort()).toEqual([...before].sort());
        const event = await db.prisma.auditEvent.findFirst({ where: { type: 'keys.rotated' } });
        expect(event?.data).toMatchObject({ actor: 'cli', added, retired: expect.arrayContaining(before) });
      } finally {
        await db.close();
      }
      expect(fs.existsSync(lockFile)).toBe(false);
    },
    timeout,
  );

  test(
    'mobile numbers: add (verified or not), verify, remove',
    async () => {
      const added = await nyckel(['users', 'add-phone', email, '+46 70 123 45 72']);
      expect(added).toMatchObject({ code: 0, stdout: `added +46701234572 to ${email} (not verified yet)\n` });
      expectFailure(await nyckel(['users', 'add-phone', email, '+46701234572']), `+46701234572 is already registered for ${email}`);
      expectFailure(
        await nyckel(['users', 'add-phone', email, '070-123 45 72']),
        'number "070-123 45 72" is not a valid phone number in international form (+46701234567)',
      );
      expect(await nyckel(['users', 'add-phone', email, '+45 20 12 34 56', '--verified'])).toMatchObject({
        code: 0,
        stdout: `added +4520123456 to ${email} (verified)\n`,
      });
      expect(await nyckel(['users', 'verify-phone', email, '+46701234572'])).toMatchObject({ code: 0, stdout: `verified +46701234572 for ${email}\n` });
      expectFailure(await nyckel(['users', 'verify-phone', email, '+46709999999']), `+46709999999 is not registered for ${email}`);
      const db = await openEmbedded();
      try {
        const phones = await db.prisma.userPhone.findMany({ where: { user: { email } }, orderBy: { e164: 'asc' } });
        expect(phones.map((p) => [p.e164, p.verifiedAt !== null])).toEqual([
          ['+4520123456', true],
          ['+46701234567', false],
          ['+46701234572', true],
        ]);
      } finally {
        await db.close();
      }
      expect((await nyckel(['users', 'remove-phone', email, '+4520123456'])).code).toBe(0);
      expectFailure(await nyckel(['users', 'remove-phone', email, '+4520123456']), `+4520123456 is not registered for ${email}`);
    },
    timeout,
  );

  test(
    'users add with a user name (IDEP.WEB numbers), or a user name alone; show and list name it; set-username',
    async () => {
      // IDEP.WEB's numbers: a user name and an address, or a user name alone (an address added later).
      const numbered = await nyckel(['users', 'add', '--username', '202100083755', '--email', 'adam@scb.example', '--password-stdin'], {
        input: `${firstPassword}\n`,
      });
      expect(numbered.stdout).toMatch(/^added 202100083755 \(id [0-9a-f-]{36}\)\n$/);
      const nameOnly = await nyckel(['users', 'add', '--username', 'Name.Only', '--password-stdin'], { input: `${firstPassword}\n` });
      expect(nameOnly.stdout).toMatch(/^added name\.only \(id/);
      expect((await nyckel(['users', 'add-email', 'name.only', 'later@scb.example', '--verified'])).code).toBe(0);
      expectFailure(
        await nyckel(['users', 'add', '--username', 'NAME.ONLY', '--password-stdin'], { input: `${firstPassword}\n` }),
        'the user name name.only is taken',
      );
      expectFailure(await nyckel(['users', 'add', '--password-stdin'], { input: `${firstPassword}\n` }), 'give --email, --username or both');
      const shown = JSON.parse((await nyckel(['users', 'show', '202100083755', '--json'])).stdout) as { username: string; email: string };
      expect(shown).toMatchObject({ username: '202100083755', email: 'adam@scb.example' });
      expect((await nyckel(['users', 'set-username', 'adam@scb.example', 'adam.n'])).stdout).toBe('adam@scb.example now signs in as adam.n\n');
      // Without --password-stdin: an invitation by mail, which `users invite` sends again.
      const invitedAdd = await nyckel(['users', 'add', '--username', 'new.hire', '--email', 'new.hire@scb.example']);
      expect(invitedAdd.stdout).toMatch(
        /^added new\.hire \(id [0-9a-f-]{36}\)\ninvitation for new\.hire sent to new\.hire@scb\.example; the link works once, until \d{4}-/,
      );
      expect((await nyckel(['users', 'invite', '--username', 'NEW.HIRE'])).stdout).toMatch(/^invitation for new\.hire sent to new\.hire@scb\.example/);
      const list = await nyckel(['users', 'list']);
      expect(list.stdout.split('\n')[0].split(/\s{2,}/)).toEqual(['USERNAME', 'EMAIL', 'NAME', 'STATUS', 'LOCALE', 'CREATED']);
      expect(list.stdout).toMatch(/^name\.only\s{2,}-\s{2,}-\s{2,}active/m);
    },
    timeout,
  );
});
