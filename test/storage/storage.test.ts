import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { errors } from 'oidc-provider';
import { compactVerify, importJWK, SignJWT, type JWK } from 'jose';
import { openDatabase, type Database } from '../../src/storage/db.ts';
import { applyMigrations, pendingMigrations, readMigrations } from '../../src/storage/migrate.ts';
import { createOidcAdapter, sweepExpiredOidcModels } from '../../src/storage/oidc-adapter.ts';
import { OidcAtRest } from '../../src/storage/oidc-at-rest.ts';
import { deleteExpiredSigningKeys, ensureSigningKeys, loadCookieKeys, loadSigningKeys, rotateSigningKeys } from '../../src/keys/signing-keys.ts';
import { newMasterKey, SecretBox } from '../../src/security/crypto.ts';
import { freshDatabase } from '../support/database.ts';

let db: Database;
let drop: () => Promise<void>;
const box = new SecretBox(Buffer.from(newMasterKey(), 'base64url'));

beforeAll(async () => {
  const fresh = await freshDatabase();
  drop = fresh.drop;
  db = await openDatabase(fresh.target);
});
afterAll(async () => {
  await db?.close();
  await drop?.();
});

describe('migrations through the wasm schema engine', () => {
  test('apply every committed migration once, record them, and do nothing the second time', async () => {
    const { migrations } = await readMigrations();
    const query = (sql: string) => db.prisma.$queryRawUnsafe<Array<{ migration_name: string }>>(sql);
    expect(await pendingMigrations(query)).toEqual(migrations.map((m) => m.name));
    expect(await applyMigrations(db.adapterFactory)).toEqual(migrations.map((m) => m.name));
    expect(await applyMigrations(db.adapterFactory)).toEqual([]);
    expect(await pendingMigrations(query)).toEqual([]);
    expect(await db.prisma.user.count()).toBe(0);
  });
});

describe('oidc-provider adapter', () => {
  const atRest = new OidcAtRest(box);
  const Adapter = () => createOidcAdapter(db.prisma, { atRest });

  test('upsert, find by id, uid and user code, destroy', async () => {
    const sessions = new (Adapter())('Session');
    await sessions.upsert('s1', { uid: 'u1', accountId: 'a1', exp: 1 }, 60);
    expect(await sessions.find('s1')).toMatchObject({ uid: 'u1', accountId: 'a1' });
    expect(await sessions.findByUid('u1')).toMatchObject({ accountId: 'a1' });
    await sessions.upsert('s1', { uid: 'u1', accountId: 'a2' }, 60);
    expect(await sessions.find('s1')).toMatchObject({ accountId: 'a2' });
    const devices = new (Adapter())('DeviceCode');
    await devices.upsert('d1', { userCode: 'ABCD-EFGH' }, 60);
    expect(await devices.findByUserCode('ABCD-EFGH')).toMatchObject({ userCode: 'ABCD-EFGH' });
    await sessions.destroy('s1');
    expect(await sessions.find('s1')).toBeUndefined();
    // Models are kept apart by type.
    expect(await new (Adapter())('Interaction').find('d1')).toBeUndefined();
  });

  test('expired rows are invisible and swept', async () => {
    const codes = new (Adapter())('AuthorizationCode');
    await codes.upsert('old', { grantId: 'g-old' }, 1);
    const old = atRest.storedId('AuthorizationCode', 'old');
    await db.prisma.oidcModel.update({ where: { type_id: { type: 'AuthorizationCode', id: old } }, data: { expiresAt: new Date(Date.now() - 1000) } });
    expect(await codes.find('old')).toBeUndefined();
    expect(await sweepExpiredOidcModels(db.prisma)).toBeGreaterThanOrEqual(1);
    expect(await db.prisma.oidcModel.count({ where: { id: old } })).toBe(0);
  });

  test('revokeByGrantId removes every model of the grant', async () => {
    const adapter = Adapter();
    await new adapter('AccessToken').upsert('at', { grantId: 'g1' }, 60);
    await new adapter('RefreshToken').upsert('rt', { grantId: 'g1' }, 60);
    await new adapter('AccessToken').upsert('other', { grantId: 'g2' }, 60);
    await new adapter('Grant').upsert('g1', {}, 60);
    await new adapter('AccessToken').revokeByGrantId('g1');
    expect(await new adapter('AccessToken').find('at')).toBeUndefined();
    expect(await new adapter('RefreshToken').find('rt')).toBeUndefined();
    expect(await new adapter('AccessToken').find('other')).toBeDefined();
  });

  test('20 parallel consumes of one code: exactly one succeeds, the replay revokes the grant', async () => {
    const codes = new (Adapter())('AuthorizationCode');
    await codes.upsert('c1', { grantId: 'g-c1' }, 60);
    await new (Adapter())('AccessToken').upsert('issued', { grantId: 'g-c1' }, 60);
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => codes.consume('c1')));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results.filter((r) => r.status === 'rejected')) {
      expect(r.reason).toBeInstanceOf(errors.InvalidGrant);
    }
    expect(await new (Adapter())('AccessToken').find('issued')).toBeUndefined();
  });

  test('a consumed code reads as consumed', async () => {
    const codes = new (Adapter())('AuthorizationCode');
    await codes.upsert('c2', { grantId: 'g-c2' }, 60);
    await codes.consume('c2');
    expect((await codes.find('c2'))?.consumed).toEqual(expect.any(Number));
  });
});

describe('signing keys', () => {
  test('created on first start, encrypted at rest, rotated with the old key still published', async () => {
    await ensureSigningKeys(db.prisma, box);
    await ensureSigningKeys(db.prisma, box);
    const first = await loadSigningKeys(db.prisma, box);
    expect(first.keys.map((k) => k.alg).sort()).toEqual(['ES256', 'RS256']);

    const raw = await db.prisma.signingKey.findMany();
    for (const row of raw) {
      const text = Buffer.from(row.privateJwk).toString('latin1');
      expect(text).not.toContain('"d"');
      expect(text).not.toContain('kty');
    }

    const rotation = await rotateSigningKeys(db.prisma, box, 3600);
    const after = await loadSigningKeys(db.prisma, box);
    expect(after.keys).toHaveLength(4);
    // Active keys first: oidc-provider signs with the first key of an algorithm.
    expect(
      after.keys
        .slice(0, 2)
        .map((k) => k.kid)
        .sort(),
    ).toEqual([...rotation.added].sort());
    expect(
      after.keys
        .slice(2)
        .map((k) => k.kid)
        .sort(),
    ).toEqual([...rotation.retired].sort());

    // A token signed by the retired key still verifies with the published set.
    const retired = after.keys.find((k) => k.kid === rotation.retired.find((kid) => kid.startsWith('es256')))!;
    const jwt = await new SignJWT({ sub: 'x' }).setProtectedHeader({ alg: 'ES256', kid: retired.kid }).sign(await importJWK(retired, 'ES256'));
    const { d: _d, ...publicJwk } = retired as JWK & { d?: string };
    await expect(compactVerify(jwt, await importJWK(publicJwk, 'ES256'))).resolves.toBeTruthy();

    // Past their publication, inside the session lifetime: kept to verify id_token_hint, never to sign, not published.
    const later = new Date(Date.now() + 3601_000);
    const hintsOnly = await loadSigningKeys(db.prisma, box, { hintSeconds: 7200, now: later });
    expect([...hintsOnly.unpublished].sort()).toEqual([...rotation.retired].sort());
    expect(hintsOnly.keys.slice(2).map((k) => k.key_ops)).toEqual([['verify'], ['verify']]);
    expect(hintsOnly.keys.slice(0, 2).every((k) => k.key_ops === undefined)).toBe(true);
    expect(await deleteExpiredSigningKeys(db.prisma, later, 7200)).toBe(0);
    expect((await loadSigningKeys(db.prisma, box, { now: later })).keys).toHaveLength(2);

    // Once their tokens have expired (and the sessions that may hold them) the retired keys are removed.
    expect(await deleteExpiredSigningKeys(db.prisma, new Date(Date.now() + 7201_000), 7200)).toBe(2);
    expect((await loadSigningKeys(db.prisma, box)).keys).toHaveLength(2);
  });

  test('a different master key cannot read the keys', async () => {
    const other = new SecretBox(Buffer.from(newMasterKey(), 'base64url'));
    await expect(loadSigningKeys(db.prisma, other)).rejects.toThrow();
  });

  test('cookie keys are made once and shared', async () => {
    const [a, b] = await Promise.all([loadCookieKeys(db.prisma, box), loadCookieKeys(db.prisma, box)]);
    expect(a).toEqual(b);
    expect(await loadCookieKeys(db.prisma, box)).toEqual(a);
  });
});
