import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { newMasterKey } from '../../src/security/crypto.ts';
import type { Database } from '../../src/storage/db.ts';
import { runCli, withEmbeddedDatabase } from '../support/cli.ts';

/**
 * The help-desk commands as the operator runs them (`node bin/nyckel.js …`, one process each) on an
 * embedded database in a fresh data directory. The steps share it and run in order.
 */
const masterKey = newMasterKey();
const timeout = 120_000;

let root: string;
let dataDir: string;
let csvFile: string;
let jsonFile: string;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function nyckel(args: string[]): Promise<Run> {
  return runCli({ dataDir, masterKey, clientsFile: path.join(root, 'clients.yaml') }, args, { cwd: root });
}

function expectFailure(run: Run, message: string) {
  expect(run).toMatchObject({ code: 1, stdout: '' });
  expect(run.stderr.trim().split('\n')).toEqual([`nyckel: ${message}`]);
}

const withEmbedded = <T>(work: (db: Database) => Promise<T>) => withEmbeddedDatabase(dataDir, work);

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'nyckel-operator-'));
  dataDir = path.join(root, 'data');
  fs.writeFileSync(path.join(root, 'clients.yaml'), 'clients: []\n');
  csvFile = path.join(root, 'users.csv');
  fs.writeFileSync(
    csvFile,
    [
      'email,name,locale,phone,password',
      'anna@scb.example,Anna Svensson,sv,+46701234567,a sturdy horse saddle',
      'bad-email,Bo,sv,,',
      'bertil@scb.example,Bertil,en,,',
      'cecilia@scb.example,Cecilia,fr,,',
      '',
    ].join('\n'),
  );
  jsonFile = path.join(root, 'more.json');
  fs.writeFileSync(jsonFile, JSON.stringify([{ email: 'david@scb.example', name: 'David' }, { email: 'anna@scb.example' }], null, 2));
});

afterAll(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

describe('nyckel operator commands', () => {
  test(
    'users import: bad rows are reported by line and skipped, good ones imported; the second run changes nothing',
    async () => {
      const first = await nyckel(['users', 'import', 'users.csv']);
      expect(first).toMatchObject({ code: 1, stderr: '' });
      expect(first.stdout.trimEnd().split('\n')).toEqual([
        'users.csv: line 3: email: is not a valid email address',
        'users.csv: line 5: locale: must be one of sv, da, en',
        '2 created, 0 already present (left unchanged), 2 bad row(s) skipped',
      ]);
      const before = await withEmbedded((db) => db.prisma.user.findMany({ orderBy: { email: 'asc' } }));
      expect(before.map((u) => u.email)).toEqual(['anna@scb.example', 'bertil@scb.example']);
      const eventsBefore = await withEmbedded((db) => db.prisma.auditEvent.count());

      const second = await nyckel(['users', 'import', 'users.csv']);
      expect(second.code).toBe(1);
      expect(second.stdout).toContain('0 created, 2 already present (left unchanged), 2 bad row(s) skipped');
      expect(await withEmbedded((db) => db.prisma.user.findMany({ orderBy: { email: 'asc' } }))).toEqual(before);
      expect(await withEmbedded((db) => db.prisma.auditEvent.count())).toBe(eventsBefore);

      const json = await nyckel(['users', 'import', jsonFile, '--json']);
      expect(json.code).toBe(0);
      expect(JSON.parse(json.stdout)).toMatchObject({
        created: 1,
        existing: 1,
        invalid: 0,
        rows: [
          { line: 2, status: 'created', email: 'david@scb.example' },
          { line: 6, status: 'exists', email: 'anna@scb.example' },
        ],
      });

      expectFailure(await nyckel(['users', 'import', 'missing.csv']), 'missing.csv: cannot be read: ENOENT');
    },
    timeout,
  );

  test(
    'users show: addresses, phones, methods, locks and latest events, as text and JSON',
    async () => {
      await withEmbedded(async ({ prisma }) => {
        const anna = await prisma.user.findUniqueOrThrow({ where: { email: 'anna@scb.example' } });
        await prisma.factorEnrolment.create({
          data: { userId: anna.id, type: 'totp', label: 'Work phone', confirmed: true, lastUsedAt: new Date('2026-01-02T03:04:05Z') },
        });
        await prisma.rateLimit.create({ data: { key: `factor-failures:totp:${anna.id}`, points: 99, expire: new Date(Date.now() + 3_600_000) } });
        await prisma.rememberedBrowser.create({
          data: { userId: anna.id, tokenHash: 'cli-test', factor: 'totp', expiresAt: new Date(Date.now() + 86_400_000) },
        });
      });
      const text = await nyckel(['users', 'show', 'Anna@SCB.example']);
      expect(text).toMatchObject({ code: 0, stderr: '' });
      expect(text.stdout).toMatch(/^anna@scb\.example {2}\(id [0-9a-f-]{36}\)\n/);
      expect(text.stdout).toContain('name: Anna Svensson    status: active    locale: sv');
      expect(text.stdout).toMatch(/anna@scb\.example {2}yes {6}\d{4}-/);
      expect(text.stdout).toMatch(/\+46701234567 {2}no/);
      expect(text.stdout).toMatch(/totp {2}Work phone {2}yes +\d{4}-\S+ {2}2026-01-02T03:04:05Z/);
      expect(text.stdout).toContain('Remembered browsers: 1');
      expect(text.stdout).toMatch(/Locks: totp LOCKED \(99 failure\(s\), until \d{4}-/);
      expect(text.stdout).toMatch(/user\.created {2}anna@scb\.example {2}actor=cli import=true password=true/);

      const json = JSON.parse((await nyckel(['users', 'show', 'anna@scb.example', '--json'])).stdout);
      expect(json).toMatchObject({ email: 'anna@scb.example', locked: true, rememberedBrowsers: 1, methods: [{ type: 'totp', label: 'Work phone' }] });

      expectFailure(await nyckel(['users', 'show', 'nobody@scb.example']), 'no user nobody@scb.example');
    },
    timeout,
  );

  test(
    'users unlock clears the locks; users reset-factors needs a reason and then removes every factor',
    async () => {
      const unlocked = await nyckel(['users', 'unlock', 'anna@scb.example']);
      expect(unlocked).toMatchObject({ code: 0, stdout: 'unlocked anna@scb.example (cleared 1 counter(s))\n' });
      // A cleared counter's window has ended (the sweep removes the row): none counts any more.
      expect(await withEmbedded((db) => db.prisma.rateLimit.count({ where: { expire: { gt: new Date() } } }))).toBe(0);

      expectFailure(
        await nyckel(['users', 'reset-factors', 'anna@scb.example']),
        '--reason "…" is required: say why the factors are reset (it is kept in the audit log)',
      );
      expectFailure(
        await nyckel(['users', 'reset-factors', 'anna@scb.example', '--reason', '  ']),
        '--reason "…" is required: say why the factors are reset (it is kept in the audit log)',
      );
      expect(await withEmbedded((db) => db.prisma.factorEnrolment.count())).toBe(1);

      const reset = await nyckel(['users', 'reset-factors', 'anna@scb.example', '--reason', 'ticket 99: new phone']);
      expect(reset).toMatchObject({ code: 0, stderr: '' });
      expect(reset.stdout).toBe(
        'reset anna@scb.example: removed 1 second factor(s), 1 phone(s), 1 remembered browser(s), 0 pending challenge(s), 0 session(s) and 0 relying-party grant(s); the user enrols again at the next sign-in\n',
      );
      await withEmbedded(async ({ prisma }) => {
        expect(await prisma.factorEnrolment.count()).toBe(0);
        expect(await prisma.userPhone.count()).toBe(0);
        expect(await prisma.userEmail.count({ where: { address: 'anna@scb.example' } })).toBe(1);
      });
    },
    timeout,
  );

  test(
    'users set-email refuses a clash clearly and otherwise moves the sign-in address',
    async () => {
      expectFailure(await nyckel(['users', 'set-email', 'anna@scb.example', 'Bertil@scb.example']), 'another user already signs in with bertil@scb.example');
      expectFailure(await nyckel(['users', 'set-email', 'anna@scb.example', 'not-an-email']), 'new email "not-an-email" is not a valid email address');
      const moved = await nyckel(['users', 'set-email', 'anna@scb.example', 'anna.svensson@scb.example']);
      expect(moved).toMatchObject({ code: 0, stdout: 'anna@scb.example now signs in as anna.svensson@scb.example\n' });
      const emails = await withEmbedded((db) =>
        db.prisma.userEmail.findMany({ where: { user: { email: 'anna.svensson@scb.example' } }, orderBy: { address: 'asc' } }),
      );
      expect(emails.map((e) => [e.address, Boolean(e.verifiedAt)])).toEqual([
        ['anna.svensson@scb.example', true],
        ['anna@scb.example', true],
      ]);
    },
    timeout,
  );

  test(
    'audit tail: newest last, one line each, for one user or all, as text or JSON lines',
    async () => {
      const tail = await nyckel(['audit', 'tail', '--user', 'anna.svensson@scb.example', '-n', '3']);
      expect(tail).toMatchObject({ code: 0, stderr: '' });
      const lines = tail.stdout.trimEnd().split('\n');
      expect(lines).toHaveLength(3);
      expect(lines[0]).toMatch(/^\S+ {2}user\.unlocked {2}anna\.svensson@scb\.example {2}actor=cli cleared=1$/);
      expect(lines[1]).toMatch(/user\.factors_reset .*reason=ticket 99: new phone/);
      expect(lines[2]).toMatch(/user\.email_changed {2}anna\.svensson@scb\.example {2}actor=cli from=anna@scb\.example to=anna\.svensson@scb\.example$/);

      const json = await nyckel(['audit', 'tail', '--json']);
      const events = json.stdout
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line));
      expect(events.at(-1)).toMatchObject({ type: 'user.email_changed', email: 'anna.svensson@scb.example', data: { actor: 'cli' } });
      expect(events.map((e) => Number(e.id))).toEqual([...events.map((e) => Number(e.id))].sort((a, b) => a - b));

      expectFailure(await nyckel(['audit', 'tail', '--user', 'nobody@scb.example']), 'no user nobody@scb.example');
      const usage = await nyckel(['audit', 'tail', '-n', 'many']);
      expect(usage.code).toBe(2);
      expect(usage.stderr).toContain('must be a whole number from 1 to 10000');
    },
    timeout,
  );
});
