// oidc-provider's models and the mail queue at rest (src/storage/oidc-at-rest.ts,
// src/delivery/sealed-body.ts), in both stores, and the upgrade of rows written before them.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Adapter } from 'oidc-provider';
import { enqueueMail, MailDispatcher } from '../../src/delivery/dispatcher.ts';
import { openDeliveryBody } from '../../src/delivery/sealed-body.ts';
import type { MailMessage } from '../../src/delivery/transport.ts';
import { openDatabase, type Database, type DatabaseTarget } from '../../src/storage/db.ts';
import { applyMigrations, migrationsDir } from '../../src/storage/migrate.ts';
import { createOidcAdapter } from '../../src/storage/oidc-adapter.ts';
import { OidcAtRest, rekeyLegacyOidcModels } from '../../src/storage/oidc-at-rest.ts';
import { createHybridOidcAdapter } from '../../src/storage/oidc-redis-adapter.ts';
import { openRedis, type RedisStore } from '../../src/storage/redis.ts';
import { captureLogger, makeDue } from '../delivery/helpers.ts';
import { freshDatabase, testDatabaseKind } from '../support/database.ts';
import { testBox } from '../support/mail.ts';
import { startTestNyckel } from '../support/nyckel.ts';
import { dumpUnder, freshRedisPrefix, redisTestUrl } from '../support/redis.ts';

const box = testBox();
const atRest = new OidcAtRest(box);
const expiresIn = 600;
const bearerModels = [
  'Session',
  'Interaction',
  'AuthorizationCode',
  'AccessToken',
  'RefreshToken',
  'ClientCredentials',
  'PushedAuthorizationRequest',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
  'ReplayDetection',
];

async function tableText(db: Database, table: 'oidc_models' | 'deliveries'): Promise<string> {
  const rows = await db.prisma.$queryRawUnsafe<Array<{ row: string }>>(`SELECT row_to_json(t)::text AS row FROM ${table} t`);
  return rows.map((r) => r.row).join('\n');
}

describe('both stores keep ids hashed and payloads sealed', () => {
  let db: Database;
  let dropDatabase: () => Promise<void>;
  let redis: RedisStore;
  const keys = freshRedisPrefix();
  beforeAll(async () => {
    const fresh = await freshDatabase();
    dropDatabase = fresh.drop;
    db = await openDatabase(fresh.target);
    await applyMigrations(db.adapterFactory);
    redis = await openRedis({ url: redisTestUrl, prefix: keys.prefix }, captureLogger().logger);
  });
  afterAll(async () => {
    await redis?.close();
    await keys.drop();
    await db?.close();
    await dropDatabase?.();
  });

  const stores = (): Array<[string, new (type: string) => Adapter, () => Promise<string>]> => [
    ['database', createOidcAdapter(db.prisma, { atRest }), () => tableText(db, 'oidc_models')],
    // The hybrid adapter keeps the short-lived models in Redis, the rest in the database.
    ['redis', createHybridOidcAdapter(db.prisma, redis.client, atRest), async () => `${await tableText(db, 'oidc_models')}\n${await dumpUnder(keys.prefix)}`],
  ];

  test.each(['database', 'redis'])('%s: no id, user code or jti in clear; find, findByUid and findByUserCode work', async (name) => {
    const [, Store, stored] = stores().find(([store]) => store === name)!;
    for (const type of bearerModels) {
      const id = `${name}-${type}-id-0123456789`;
      await new Store(type).upsert(id, { jti: id, kind: type, accountId: 'acct-1', uid: `${name}-${type}-uid`, grantId: `${name}-grant` }, expiresIn);
      expect(await new Store(type).find(id)).toMatchObject({ jti: id, accountId: 'acct-1' });
      // oidc-provider gets a Session's id back from its uid (the cookie value it must not learn otherwise).
      expect(await new Store(type).findByUid(`${name}-${type}-uid`)).toMatchObject({ jti: id });
    }
    const userCode = `${name}-WDJB-MJHT`;
    await new Store('DeviceCode').upsert(`${name}-device`, { jti: `${name}-device`, userCode, grantId: `${name}-grant` }, expiresIn);
    expect(await new Store('DeviceCode').findByUserCode(userCode)).toMatchObject({ jti: `${name}-device`, userCode });
    await new Store('Grant').upsert(`${name}-grant`, { jti: `${name}-grant`, accountId: 'acct-1' }, expiresIn);

    const text = await stored();
    expect(text).toContain(`${name}-${bearerModels[0]}-uid`);
    expect(text).not.toContain('-id-0123456789');
    expect(text).not.toContain(userCode);
    expect(text).not.toContain(`${name}-device`);
    // A grant's id is no credential, and what revocation goes by: kept as it is.
    expect(await db.prisma.oidcModel.count({ where: { type: 'Grant', id: `${name}-grant` } })).toBe(1);
    await new Store('AccessToken').revokeByGrantId(`${name}-grant`);
    for (const type of ['AccessToken', 'RefreshToken', 'AuthorizationCode', 'DeviceCode']) {
      expect(await new Store(type).find(`${name}-${type}-id-0123456789`)).toBeUndefined();
    }
  });

  test('a sealed payload moved onto another row does not open there', async () => {
    const Store = createOidcAdapter(db.prisma, { atRest });
    await new Store('Session').upsert('victim-session', { jti: 'victim-session', accountId: 'victim' }, expiresIn);
    await new Store('Session').upsert('attacker-session', { jti: 'attacker-session', accountId: 'attacker' }, expiresIn);
    const victim = await db.prisma.oidcModel.findUniqueOrThrow({ where: { type_id: { type: 'Session', id: atRest.storedId('Session', 'victim-session') } } });
    await db.prisma.oidcModel.update({
      where: { type_id: { type: 'Session', id: atRest.storedId('Session', 'attacker-session') } },
      data: { sealed: victim.sealed },
    });
    await expect(new Store('Session').find('attacker-session')).rejects.toThrow();
  });

  test('rows in the old form are re-keyed once, also by two nodes at the same time', async () => {
    const legacy = Array.from({ length: 30 }, (_, i) => ({
      type: i % 3 ? 'RefreshToken' : 'Session',
      id: `legacy-${i}`,
      uid: `legacy-uid-${i}`,
      grantId: `legacy-grant-${i}`,
    }));
    await db.prisma.oidcModel.createMany({
      data: legacy.map((row) => ({
        ...row,
        payload: { jti: row.id, uid: row.uid, grantId: row.grantId, accountId: 'legacy-account' },
        expiresAt: new Date(Date.now() + 60_000),
      })),
    });
    const [a, b] = await Promise.all([rekeyLegacyOidcModels(db.prisma, atRest, 7), rekeyLegacyOidcModels(db.prisma, atRest, 7)]);
    expect(a + b).toBe(30);
    expect(await rekeyLegacyOidcModels(db.prisma, atRest)).toBe(0);
    const Store = createOidcAdapter(db.prisma, { atRest });
    for (const row of legacy) expect(await new Store(row.type).find(row.id)).toMatchObject({ jti: row.id, accountId: 'legacy-account' });
    expect(await tableText(db, 'oidc_models')).not.toMatch(/"legacy-\d+"/);
    // What other code queries in clear is still there.
    expect(await db.prisma.oidcModel.count({ where: { type: 'Session', payload: { path: ['accountId'], equals: 'legacy-account' } } })).toBe(10);
  });
});

describe('an upgrade: rows written before the secrets_at_rest migration', () => {
  let target: DatabaseTarget;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    if (testDatabaseKind() === 'postgres') {
      const fresh = await freshDatabase();
      target = fresh.target;
      cleanup = fresh.drop;
    } else {
      // (An in-memory PGlite would not outlive its first handle.)
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nyckel-upgrade-'));
      target = { kind: 'pglite', dataDir: dir };
      cleanup = async () => fs.rmSync(dir, { recursive: true, force: true });
    }
  });
  afterAll(() => cleanup?.());

  /** The database as the previous version left it: every migration before secrets_at_rest, and its rows. */
  async function previousVersion() {
    const old = fs.mkdtempSync(path.join(os.tmpdir(), 'nyckel-migrations-'));
    for (const entry of fs.readdirSync(migrationsDir)) {
      if (!entry.endsWith('_secrets_at_rest')) fs.cpSync(path.join(migrationsDir, entry), path.join(old, entry), { recursive: true });
    }
    const db = await openDatabase(target);
    try {
      await applyMigrations(db.adapterFactory, old);
      const later = new Date(Date.now() + 3_600_000).toISOString();
      await db.prisma.$executeRawUnsafe(`
        INSERT INTO oidc_models (type, id, payload, grant_id, uid, user_code, expires_at) VALUES
          ('Session', 'old-session-id', '{"jti":"old-session-id","uid":"old-uid","accountId":"old-account"}', NULL, 'old-uid', NULL, '${later}'),
          ('RefreshToken', 'old-refresh-token', '{"jti":"old-refresh-token","grantId":"old-grant","accountId":"old-account"}', 'old-grant', NULL, NULL, '${later}'),
          ('DeviceCode', 'old-device-code', '{"jti":"old-device-code","userCode":"OLDU-CODE","grantId":"old-grant"}', 'old-grant', NULL, 'OLDU-CODE', '${later}'),
          ('Grant', 'old-grant', '{"jti":"old-grant","accountId":"old-account"}', NULL, NULL, NULL, '${later}')`);
      await db.prisma.$executeRawUnsafe(`
        INSERT INTO deliveries (id, channel, transport, recipient, subject, text, html, purpose, status, attempts) VALUES
          ('00000000-0000-4000-8000-000000000001', 'email', NULL, 'queued@example.se', 'Your code 314159', 'Code: 314159', NULL, 'email-code', 'queued', 0),
          ('00000000-0000-4000-8000-000000000002', 'email', 'smtp', 'sent@example.se', 'Your code 271828', 'Code: 271828', '<p>271828</p>', 'email-code', 'sent', 1),
          ('00000000-0000-4000-8000-000000000003', 'email', 'smtp', 'failed@example.se', 'Your code 161803', 'Code: 161803', NULL, 'email-code', 'failed', 6),
          ('00000000-0000-4000-8000-000000000004', 'sms', 'outbox', '+46701234599', NULL, 'Code 141421', NULL, 'sms', 'sent', 1)`);
    } finally {
      await db.close();
      fs.rmSync(old, { recursive: true, force: true });
    }
  }

  test('Nyckel migrates and seals at start-up: sessions, refresh tokens and grants keep working, no code or token is left in clear', async () => {
    await previousVersion();
    const sent: MailMessage[] = [];
    const nyckel = await startTestNyckel({
      database: { target, drop: async () => {} },
      mailTransport: { name: 'smtp', send: async (mail) => void sent.push(mail) },
    });
    try {
      const db = nyckel.db;
      const oidcText = await tableText(db, 'oidc_models');
      for (const secret of ['old-session-id', 'old-refresh-token', 'old-device-code', 'OLDU-CODE']) expect(oidcText).not.toContain(secret);
      const Store = createOidcAdapter(db.prisma, { atRest: new OidcAtRest(nyckel.box) });
      expect(await new Store('Session').find('old-session-id')).toMatchObject({ uid: 'old-uid', accountId: 'old-account' });
      expect(await new Store('Session').findByUid('old-uid')).toMatchObject({ jti: 'old-session-id' });
      expect(await new Store('DeviceCode').findByUserCode('OLDU-CODE')).toMatchObject({ jti: 'old-device-code' });
      expect(await new Store('Grant').find('old-grant')).toMatchObject({ accountId: 'old-account' });
      await new Store('RefreshToken').consume('old-refresh-token');
      expect(await new Store('RefreshToken').find('old-refresh-token')).toMatchObject({ consumed: expect.any(Number) });

      // Mail: the sent and failed bodies are gone; the queued one was sealed and still goes out (with
      // its code); the dev outbox's text is sealed and opens.
      expect(await tableText(db, 'deliveries')).not.toMatch(/314159|271828|161803|141421/);
      await nyckel.mail.dispatcher.deliverDue();
      expect(sent).toEqual([expect.objectContaining({ to: 'queued@example.se', subject: 'Your code 314159', text: 'Code: 314159' })]);
      const rows = await db.prisma.delivery.findMany({ orderBy: { id: 'asc' } });
      expect(rows.map((row) => [row.recipient, row.status, row.body === null, row.subject, row.text, row.html])).toEqual([
        ['queued@example.se', 'sent', true, null, null, null],
        ['sent@example.se', 'sent', true, null, null, null],
        ['failed@example.se', 'failed', true, null, null, null],
        ['+46701234599', 'sent', false, null, null, null],
      ]);
      expect(openDeliveryBody(nyckel.box, rows[3])).toEqual({ text: 'Code 141421' });
    } finally {
      await nyckel.stop();
    }
  });
});

describe('the mail queue', () => {
  test('a mail is sealed while queued and its body gone once sent; a provider quoting the mail back is not logged or kept', async () => {
    const fresh = await freshDatabase();
    const db = await openDatabase(fresh.target);
    try {
      await applyMigrations(db.adapterFactory);
      const log = captureLogger();
      let refuse = true;
      const delivered: MailMessage[] = [];
      const transport = {
        name: 'smtp' as const,
        send: async (mail: MailMessage) => {
          // As some servers do: the refusal quotes the subject line (which names the code).
          if (refuse) throw new Error(`550 5.7.1 Message refused: "${mail.subject}" looks like spam`);
          delivered.push(mail);
        },
      };
      const dispatcher = new MailDispatcher(db.prisma, box, transport, 'n@nyckel.test', log.logger, { retryDelaysSeconds: [60] });
      const link = 'https://nyckel.test/interaction/u1/link/c1/Zq3vG8xkR2pWm7tLs9Yb4nHc6JdQe1Fa5Uo0Ti8Kr2M';
      const row = await enqueueMail(db.prisma, box, {
        to: 'anna@example.se',
        subject: 'Your code 424242',
        text: `Code 424242, or ${link}`,
        html: `<a href="${link}">424242</a>`,
        purpose: 'email-link',
      });
      expect(await tableText(db, 'deliveries')).not.toMatch(/424242|Zq3vG8/);

      await dispatcher.deliverDue();
      const retrying = await db.prisma.delivery.findUniqueOrThrow({ where: { id: row.id } });
      expect(retrying.lastError).toContain('Message refused');
      expect(openDeliveryBody(box, retrying)).toMatchObject({ subject: 'Your code 424242' });

      refuse = false;
      await makeDue(db.prisma, row.id);
      await dispatcher.deliverDue();
      expect(delivered).toEqual([expect.objectContaining({ subject: 'Your code 424242', text: `Code 424242, or ${link}` })]);
      expect(await db.prisma.delivery.findUniqueOrThrow({ where: { id: row.id } })).toMatchObject({
        status: 'sent',
        body: null,
        subject: null,
        text: null,
        html: null,
      });
      expect(await tableText(db, 'deliveries')).not.toMatch(/424242|Zq3vG8/);
      expect(log.lines.join('\n')).toContain('Message refused');
      expect(log.lines.join('\n')).not.toMatch(/424242|Zq3vG8/);
    } finally {
      await db.close();
      await fresh.drop();
    }
  });
});
