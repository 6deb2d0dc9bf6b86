import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { errors, type Adapter } from 'oidc-provider';
import pino from 'pino';
import { FailureLock } from '../../src/factors/shared/failure-lock.ts';
import { NyckelError } from '../../src/errors.ts';
import { LoginThrottle } from '../../src/accounts/login-throttle.ts';
import { openMigratedDatabase } from '../../src/nyckel.ts';
import type { Database } from '../../src/storage/db.ts';
import { createHybridOidcAdapter } from '../../src/storage/oidc-redis-adapter.ts';
import { OidcAtRest } from '../../src/storage/oidc-at-rest.ts';
import { testBox } from '../support/mail.ts';
import { openRedis, RedisUnavailableError, type RedisStore } from '../../src/storage/redis.ts';
import { LocalSignals, RedisSignals } from '../../src/storage/signals.ts';
import { freshDatabase } from '../support/database.ts';
import { freshRedisPrefix, keysUnder, redisTestUrl } from '../support/redis.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';

const quiet = pino({ level: 'silent' });
let db: Database;
let dropDatabase: () => Promise<void>;
let redis: RedisStore;
const { prefix, drop: dropKeys } = freshRedisPrefix();
let Hybrid: new (type: string) => Adapter;
const atRest = new OidcAtRest(testBox());

beforeAll(async () => {
  const fresh = await freshDatabase();
  dropDatabase = fresh.drop;
  db = await openMigratedDatabase(fresh.target);
  redis = await openRedis({ url: redisTestUrl, prefix }, quiet);
  Hybrid = createHybridOidcAdapter(db.prisma, redis.client, atRest);
});
afterAll(async () => {
  await redis?.close();
  await db?.close();
  await dropDatabase?.();
  await dropKeys();
});

describe('oidc-provider models split between Redis and the database', () => {
  test('an interaction lives in Redis only (by id and by uid), expires with its TTL, and is destroyed', async () => {
    const interactions = new Hybrid('Interaction');
    await interactions.upsert('i-1', { uid: 'u-1', jti: 'i-1', kind: 'Interaction' }, 1);
    expect(await interactions.find('i-1')).toMatchObject({ uid: 'u-1' });
    expect(await interactions.findByUid('u-1')).toMatchObject({ jti: 'i-1' });
    expect(await db.prisma.oidcModel.count({ where: { type: 'Interaction' } })).toBe(0);
    expect(await keysUnder(prefix)).toEqual(expect.arrayContaining([`oidc:Interaction:${atRest.storedId('Interaction', 'i-1')}`, 'oidc:Interaction:uid:u-1']));

    await interactions.upsert('i-2', { uid: 'u-2' }, 60);
    await interactions.destroy('i-2');
    expect(await interactions.find('i-2')).toBeUndefined();

    // Without expiresIn a model and its uid lookup stay until destroyed.
    await interactions.upsert('i-3', { uid: 'u-3' }, 0);

    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(await interactions.find('i-1')).toBeUndefined();
    expect(await interactions.findByUid('u-1')).toBeUndefined();
    expect(await interactions.findByUid('u-3')).toMatchObject({ uid: 'u-3' });
  });

  test('sessions, grants and refresh tokens stay in the database', async () => {
    await new Hybrid('Session').upsert('s-1', { accountId: 'a-1', uid: 'su-1' }, 600);
    await new Hybrid('RefreshToken').upsert('r-1', { grantId: 'g-0' }, 600);
    expect(await db.prisma.oidcModel.count({ where: { id: { in: [atRest.storedId('Session', 's-1'), atRest.storedId('RefreshToken', 'r-1')] } } })).toBe(2);
    expect(await new Hybrid('Session').findByUid('su-1')).toMatchObject({ accountId: 'a-1' });
    const stored = [atRest.storedId('Session', 's-1'), atRest.storedId('RefreshToken', 'r-1')];
    expect((await keysUnder(prefix)).filter((key) => stored.some((id) => key.includes(id)))).toEqual([]);
  });

  test("of parallel uses of one authorization code exactly one wins; the replay revokes the grant's tokens in both stores", async () => {
    const codes = new Hybrid('AuthorizationCode');
    await codes.upsert('c-1', { grantId: 'g-1' }, 60);
    await new Hybrid('AccessToken').upsert('at-1', { grantId: 'g-1' }, 600);
    await new Hybrid('RefreshToken').upsert('rt-1', { grantId: 'g-1' }, 600);

    const results = await Promise.allSettled(Array.from({ length: 8 }, () => codes.consume('c-1')));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
    expect(refused).toHaveLength(7);
    for (const reason of refused) expect(reason).toBeInstanceOf(errors.InvalidGrant);

    expect(await new Hybrid('AccessToken').find('at-1')).toBeUndefined();
    expect(await new Hybrid('RefreshToken').find('rt-1')).toBeUndefined();
    expect(await codes.find('c-1')).toBeUndefined();
  });

  test('a consumed model reads back with its consumed time; consuming an access token twice is no replay error', async () => {
    const tokens = new Hybrid('AccessToken');
    await tokens.upsert('at-2', { grantId: 'g-2' }, 60);
    await tokens.consume('at-2');
    await tokens.consume('at-2');
    const found = await tokens.find('at-2');
    expect(found?.consumed).toBeGreaterThan(Date.now() / 1000 - 60);
  });

  test('revoking a grant from a database model (a refresh token replayed) reaches its access tokens in Redis', async () => {
    await new Hybrid('AccessToken').upsert('at-3', { grantId: 'g-3' }, 600);
    const refresh = new Hybrid('RefreshToken');
    await refresh.upsert('rt-3', { grantId: 'g-3' }, 600);
    await refresh.consume('rt-3');
    await expect(refresh.consume('rt-3')).rejects.toBeInstanceOf(errors.InvalidGrant);
    expect(await new Hybrid('AccessToken').find('at-3')).toBeUndefined();
  });
});

describe('counters in Redis', () => {
  test('failure locks count per user and family, show to the operator, and clear', async () => {
    const lock = new FailureLock({ prisma: db.prisma, redis: redis.client }, 3, 60);
    const wrong = async () => ({ verdict: 'wrong' as const, value: null });
    for (let i = 0; i < 3; i++) await lock.judge('user-1', 'totp', wrong);
    await lock.judge('user-1', 'email', wrong);
    expect(await lock.judge('user-1', 'totp', wrong)).toMatchObject({ locked: true });
    const counts = await lock.counts('user-1');
    // A refused answer is not read, so not counted.
    expect(counts.map((c) => [c.family, c.failures]).sort()).toEqual([
      ['email', 1],
      ['totp', 3],
    ]);
    expect(await db.prisma.rateLimit.count()).toBe(0);
    expect(await lock.clear('user-1')).toBe(2);
    expect(await lock.check('user-1', 'totp')).toEqual({ locked: false, attemptsLeft: 3 });
  });

  test('the login throttle is shared by two nodes (two connections) and refuses past the budget', async () => {
    const other = await openRedis({ url: redisTestUrl, prefix }, quiet);
    try {
      const limits = { perAccount: 2, perIp: 100, windowSeconds: 60 };
      const a = new LoginThrottle({ prisma: db.prisma, redis: redis.client }, limits);
      const b = new LoginThrottle({ prisma: db.prisma, redis: other.client }, limits);
      const anna = { id: '0b7f6f5e-4a43-4d1c-9a3e-2f1f1b6c9d01' };
      await a.beginAttempt(LoginThrottle.keyOf(anna), '10.0.0.1');
      await b.beginAttempt(LoginThrottle.keyOf(anna), '10.0.0.2');
      await expect(a.beginAttempt(LoginThrottle.keyOf(anna), '10.0.0.3')).rejects.toMatchObject({ code: 'rate_limited' });
      expect(await b.accountCount(anna)).toMatchObject({ failures: 3 });
      // A name no account has is counted under the name as typed, in any case.
      await a.beginAttempt(LoginThrottle.keyOf(null, 'Nobody@Example.se'), '10.0.0.4');
      await b.beginAttempt(LoginThrottle.keyOf(null, 'nobody@example.se'), '10.0.0.5');
      await expect(a.beginAttempt(LoginThrottle.keyOf(null, ' NOBODY@example.se'), '10.0.0.6')).rejects.toMatchObject({ code: 'rate_limited' });
    } finally {
      await other.close();
    }
  });

  describe('with Redis unreachable', () => {
    let proxy: TcpProxy;
    let behind: RedisStore;
    beforeAll(async () => {
      const url = new URL(redisTestUrl);
      proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 6379) });
      behind = await openRedis({ url: `redis://${proxy.address}`, prefix }, quiet);
    });
    afterAll(async () => {
      await behind?.close();
      await proxy?.close();
    });

    test('a counter answers temporarily_unavailable (never "not locked"), and works again once Redis is back', async () => {
      const lock = new FailureLock({ prisma: db.prisma, redis: behind.client }, 3, 60);
      const wrong = async () => ({ verdict: 'wrong' as const, value: null });
      await lock.judge('user-2', 'totp', wrong);
      proxy.cut();
      await new Promise((resolve) => setTimeout(resolve, 100));
      const refused = await lock.judge('user-2', 'totp', wrong).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(NyckelError);
      expect(refused).toMatchObject({ code: 'temporarily_unavailable', status: 503 });
      await expect(lock.check('user-2', 'totp')).rejects.toMatchObject({ code: 'temporarily_unavailable' });
      proxy.restore();
      const deadline = Date.now() + 10_000;
      while (!(await behind.ping()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await lock.check('user-2', 'totp')).toEqual({ locked: false, attemptsLeft: 2 });
    });

    test('a node cannot start against an unreachable Redis: a clear error naming it, without the password', async () => {
      proxy.cut();
      try {
        const error = await openRedis({ url: `redis://nyckel:s3cret@${proxy.address}`, prefix }, quiet).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(RedisUnavailableError);
        expect((error as Error).message).toContain(proxy.address);
        expect((error as Error).message).not.toContain('s3cret');
      } finally {
        proxy.restore();
      }
    });
  });
});

describe('signals between nodes', () => {
  test('a wait on one node is answered by a notify on another; other topics and timeouts do not answer it', async () => {
    const other = await openRedis({ url: redisTestUrl, prefix }, quiet);
    const nodeA = new RedisSignals(redis.client, redis.subscriber, prefix);
    const nodeB = new RedisSignals(other.client, other.subscriber, prefix);
    try {
      const { notified } = await nodeA.listen('challenge:1', 5000);
      await nodeB.notify('challenge:2');
      await nodeB.notify('challenge:1');
      expect(await notified).toBe(true);

      const quietWait = await nodeA.listen('challenge:3', 200);
      expect(await quietWait.notified).toBe(false);

      const gone = new AbortController();
      const aborted = await nodeA.listen('challenge:4', 5000, gone.signal);
      gone.abort();
      expect(await aborted.notified).toBe(false);
    } finally {
      await nodeA.close();
      await nodeB.close();
      await other.close();
    }
  });

  test('one node without Redis: the signal stays in the process', async () => {
    const signals = new LocalSignals();
    const { notified } = await signals.listen('challenge:5', 5000);
    await signals.notify('challenge:5');
    expect(await notified).toBe(true);
  });
});
