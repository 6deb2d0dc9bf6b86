import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { hashOf } from '../../src/factors/recovery-code/index.ts';
import { newMasterKey, SecretBox } from '../../src/security/crypto.ts';
import { openDatabase } from '../../src/storage/db.ts';
import { projectRoot } from '../support/process.ts';
import { runCli, type CliRun } from '../support/cli.ts';

/** `nyckel users recovery-codes <email> [--regenerate]` as the operator runs it, on an embedded database. */
const email = 'bo.jensen@tdc.example';
const masterKey = newMasterKey();
const timeout = 120_000;
let root: string;

function nyckel(args: string[], input = ''): Promise<CliRun> {
  return runCli({ dataDir: path.join(root, 'data'), masterKey, clientsFile: path.join(projectRoot, 'config', 'clients.yaml') }, args, {
    input,
    env: { NYCKEL_RECOVERY_CODES: '8' },
  });
}

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'nyckel-recovery-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

test(
  'counts, regenerates (printed once, stored as keyed hashes, the earlier codes replaced) and refuses an unknown user',
  async () => {
    expect((await nyckel(['users', 'add', '--email', email, '--password-stdin'], 'a sturdy horse saddle')).code).toBe(0);
    expect(await nyckel(['users', 'recovery-codes', email])).toMatchObject({ code: 0, stdout: `${email} has 0 unused recovery code(s)\n` });

    const first = await nyckel(['users', 'recovery-codes', email, '--regenerate']);
    expect(first.code).toBe(0);
    const codesOf = (stdout: string) => stdout.split('\n').filter((line) => /^[a-z2-9]{5}-[a-z2-9]{5}$/.test(line));
    const codes = codesOf(first.stdout);
    expect(codes).toHaveLength(8);
    expect(first.stdout.split('\n')[0]).toContain('the earlier ones no longer work');
    const second = codesOf((await nyckel(['users', 'recovery-codes', email, '--regenerate'])).stdout);
    expect(second).toHaveLength(8);
    expect(second.filter((code) => codes.includes(code))).toEqual([]);
    expect(await nyckel(['users', 'recovery-codes', email])).toMatchObject({ code: 0, stdout: `${email} has 8 unused recovery code(s)\n` });

    const unknown = await nyckel(['users', 'recovery-codes', 'nobody@tdc.example', '--regenerate']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^nyckel: .*nobody@tdc\.example/);

    const db = await openDatabase({ kind: 'pglite', dataDir: path.join(root, 'data', 'pgdata') });
    try {
      const user = await db.prisma.user.findUniqueOrThrow({ where: { email } });
      const rows = await db.prisma.factorEnrolment.findMany({ where: { userId: user.id, type: 'recovery-code' } });
      const box = new SecretBox(Buffer.from(masterKey, 'base64url'));
      expect(rows.map((r) => (r.data as { hash: string }).hash).sort()).toEqual(second.map((code) => hashOf(box, user.id, code)).sort());
      const events = await db.prisma.auditEvent.findMany({ where: { type: 'recovery-codes.generated' } });
      expect(events.map((e) => e.data)).toEqual([
        { count: 8, actor: 'cli' },
        { count: 8, actor: 'cli' },
      ]);
    } finally {
      await db.close();
    }
  },
  timeout,
);
