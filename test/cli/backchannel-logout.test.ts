import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, expect, test } from '@jest/globals';
import { createLocalJWKSet, jwtVerify, type JWK } from 'jose';
import { Accounts } from '../../src/accounts/accounts.ts';
import { AuditLog } from '../../src/accounts/audit.ts';
import { ensureSigningKeys, loadSigningKeys } from '../../src/keys/signing-keys.ts';
import { newMasterKey, SecretBox } from '../../src/security/crypto.ts';
import { openDatabase } from '../../src/storage/db.ts';
import { applyMigrations } from '../../src/storage/migrate.ts';
import { createOidcAdapter } from '../../src/storage/oidc-adapter.ts';
import { OidcAtRest } from '../../src/storage/oidc-at-rest.ts';
import { runCli } from '../support/cli.ts';
import { startLogoutReceiver } from '../support/logout.ts';

/**
 * `nyckel users disable`, `users set-password` and `users reset-factors` on a user signed in to an app
 * with a back-channel logout URL: the command line, which runs no provider, still posts the app a
 * logout token, signed with the installation's keys and naming the session's sid for that app.
 */
const masterKey = newMasterKey();
/** Each command's user, with the sid their session gave the portal. */
const users = {
  disable: { email: 'cli.logout@example.test', sid: 'portal-sid' },
  setPassword: { email: 'cli.password@example.test', sid: 'portal-sid-password' },
  resetFactors: { email: 'cli.factors@example.test', sid: 'portal-sid-factors' },
};
let root: string;
let dataDir: string;
let clientsFile: string;
let receiver: Awaited<ReturnType<typeof startLogoutReceiver>>;
let publicKeys: JWK[];

beforeAll(async () => {
  receiver = await startLogoutReceiver();
  const port = receiver.port;
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'nyckel-cli-logout-'));
  dataDir = path.join(root, 'data');
  clientsFile = path.join(root, 'clients.yaml');
  fs.writeFileSync(
    clientsFile,
    [
      'clients:',
      '  - client_id: portal',
      '    name: Portal',
      '    redirect_uris: [https://portal.example/cb]',
      '    client_secret: portal-secret-portal-secret',
      `    backchannel_logout_uri: http://127.0.0.1:${port}/portal-logout`,
      '    backchannel_logout_session_required: true',
      '',
    ].join('\n'),
  );

  // What a node leaves behind: the signing keys, the user, and a session of theirs at the portal.
  const db = await openDatabase({ kind: 'pglite', dataDir: path.join(dataDir, 'pgdata') });
  try {
    await applyMigrations(db.adapterFactory);
    const box = new SecretBox(Buffer.from(masterKey, 'base64url'));
    await ensureSigningKeys(db.prisma, box);
    publicKeys = (await loadSigningKeys(db.prisma, box)).keys.map(({ kty, crv, x, y, n, e, kid, alg }) => ({ kty, crv, x, y, n, e, kid, alg }));
    const accounts = new Accounts(db.prisma, new AuditLog(db.prisma), { memoryCost: 8192, timeCost: 1 });
    const Session = createOidcAdapter(db.prisma, { atRest: new OidcAtRest(box) });
    for (const { email, sid } of Object.values(users)) {
      const user = await accounts.create({ email, password: 'a sturdy horse saddle' });
      await new Session('Session').upsert(
        `session-of-${sid}`,
        {
          jti: `session-of-${sid}`,
          uid: `uid-of-${sid}`,
          accountId: user.id,
          loginTs: Math.floor(Date.now() / 1000),
          authorizations: { portal: { sid } },
        },
        3600,
      );
    }
  } finally {
    await db.close();
  }
});
afterAll(async () => {
  await receiver?.close();
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

beforeEach(() => {
  receiver.received.length = 0;
});

/** The one logout token the portal received, verified, names the session's sid. */
async function expectPortalTold(sid: string) {
  const received = receiver.tokens();
  expect(received.map((r) => r.path)).toEqual(['/portal-logout']);
  const { payload } = await jwtVerify(received[0].token, createLocalJWKSet({ keys: publicKeys }), {
    issuer: 'https://id.example.test',
    audience: 'portal',
    typ: 'logout+jwt',
  });
  expect(payload).toMatchObject({ sid, events: { 'http://schemas.openid.net/event/backchannel-logout': {} } });
}

const cli = (args: string[], input?: string) => runCli({ dataDir, masterKey, clientsFile }, args, { input, env: { ISSUER: 'https://id.example.test' } });

test('users disable posts the apps of the ended sessions a verifiable logout token', async () => {
  const { email, sid } = users.disable;
  expect(await cli(['users', 'disable', email])).toMatchObject({ code: 0, stdout: `disabled ${email}\n`, stderr: '' });
  await expectPortalTold(sid);
}, 120_000);

test('users set-password tells the apps of the ended sessions too', async () => {
  const { email, sid } = users.setPassword;
  expect(await cli(['users', 'set-password', email, '--password-stdin'], 'a brand new sturdy passphrase\n')).toMatchObject({ code: 0, stderr: '' });
  await expectPortalTold(sid);
}, 120_000);

test('users reset-factors tells the apps of the ended sessions too', async () => {
  const { email, sid } = users.resetFactors;
  expect(await cli(['users', 'reset-factors', email, '--reason', 'ticket 9: phone lost'])).toMatchObject({ code: 0, stderr: '' });
  await expectPortalTold(sid);
}, 120_000);
