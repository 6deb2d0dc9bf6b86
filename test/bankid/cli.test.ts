import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Accounts } from '../../src/accounts/accounts.ts';
import { AuditLog } from '../../src/accounts/audit.ts';
import { newMasterKey, SecretBox } from '../../src/security/crypto.ts';
import { openDatabase } from '../../src/storage/db.ts';
import { runCli, type CliRun } from '../support/cli.ts';

/** `nyckel users set-personal-number` / `remove-personal-number` as the operator runs them (child processes, embedded database). */
const masterKey = newMasterKey();
const email = 'karl.karlsson@aiai.example';
let root: string;
let dataDir: string;

function nyckel(args: string[], input = ''): Promise<CliRun> {
  return runCli({ dataDir, masterKey, clientsFile: path.join(root, 'clients.yaml') }, args, { input });
}

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'nyckel-bankid-cli-'));
  dataDir = path.join(root, 'data');
  fs.writeFileSync(
    path.join(root, 'clients.yaml'),
    'clients:\n  - client_id: spa\n    name: SPA\n    token_endpoint_auth_method: none\n    redirect_uris: [http://localhost:5173/cb]\n',
  );
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('nyckel users set-personal-number / remove-personal-number', () => {
  test('binds a valid number (stored sealed and masked), refuses a wrong check digit, unbinds', async () => {
    const added = await nyckel(['users', 'add', '--email', email, '--password-stdin'], 'a sturdy horse saddle\n');
    expect(added.code).toBe(0);

    const wrong = await nyckel(['users', 'set-personal-number', email, '19900101-2386']);
    expect(wrong).toMatchObject({ code: 1, stdout: '' });
    expect(wrong.stderr.trim()).toBe('nyckel: personal number "19900101-2386" has a wrong check digit (the last digit)');
    const unknown = await nyckel(['users', 'set-personal-number', 'nobody@aiai.example', '19900101-2385']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^nyckel: .*nobody@aiai\.example/);

    const set = await nyckel(['users', 'set-personal-number', email, '900101-2385']);
    expect(set).toMatchObject({ code: 0, stdout: `${email} signs in with the BankID of 19xxxxxx-xx85\n` });

    const db = await openDatabase({ kind: 'pglite', dataDir: path.join(dataDir, 'pgdata') });
    try {
      const user = await new Accounts(db.prisma, new AuditLog(db.prisma), { memoryCost: 8192, timeCost: 1 }).requireByLogin(email);
      const rows = await db.prisma.factorEnrolment.findMany({ where: { userId: user.id, type: 'bankid' } });
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ confirmed: true, label: '19xxxxxx-xx85', data: { masked: '19xxxxxx-xx85' } });
      const box = new SecretBox(Buffer.from(masterKey, 'base64url'));
      expect(box.open('bankid-personal-number', rows[0].secret!, rows[0].id).toString()).toBe('199001012385');
      const events = await db.prisma.auditEvent.findMany({ where: { userId: user.id, type: 'factor.enrolled' } });
      expect(events.map((e) => e.data)).toEqual([{ factor: 'bankid', masked: '19xxxxxx-xx85', actor: 'cli' }]);
    } finally {
      await db.close();
    }

    expect(await nyckel(['users', 'remove-personal-number', email])).toMatchObject({ code: 0, stdout: `removed the personal number of ${email}\n` });
    expect(await nyckel(['users', 'remove-personal-number', email])).toMatchObject({ code: 0, stdout: `${email} had no personal number\n` });
    // Each command is a new process (tsx, then PGlite's wasm): seconds each on a busy machine.
  }, 180_000);
});
