import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import type { Redis } from 'ioredis';
import type { PrismaClient } from './db.ts';
import { createOidcAdapter, type OnceDestroyable, grantSources } from './oidc-adapter.ts';
import type { OidcAtRest } from './oidc-at-rest.ts';

/**
 * The models that live minutes and are read on every step of a sign-in: kept in Redis when there is
 * one. Sessions stay in the database with grants and refresh tokens: an account's sessions are
 * listed on /account and ended in the same transaction as a reset of its factors.
 */
export const redisModels = new Set([
  'Interaction',
  'AuthorizationCode',
  'AccessToken',
  'ClientCredentials',
  'PushedAuthorizationRequest',
  'ReplayDetection',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
]);

// Marks a stored model consumed unless it already is: 1 = now consumed, 0 = was already, -1 = gone.
const CONSUME = `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
return redis.call('HSETNX', KEYS[1], 'consumed', ARGV[1])
`;

const modelKey = (type: string, id: string) => `oidc:${type}:${id}`;
const grantKey = (grantId: string) => `oidc:grant:${grantId}`;

/** Deletes every Redis model of a grant (grant ids are kept in clear: they are no credential). */
export async function revokeGrantInRedis(redis: Redis, grantId: string): Promise<void> {
  const keys = await redis.smembers(grantKey(grantId));
  // Every Redis model of the grant is in this one set; members are unprefixed keys, as written.
  await redis.del(grantKey(grantId), ...keys);
}
const uidKey = (type: string, uid: string) => `oidc:${type}:uid:${uid}`;
const userCodeKey = (type: string, userCode: string) => `oidc:${type}:userCode:${userCode}`;

/**
 * One model type in Redis: a hash (`sealed`: the sealed payload, and `consumed` once used) that
 * expires with the model, under the keyed hash of the model's id (src/storage/oidc-at-rest.ts); the
 * uid and user-code lookups lead to that hash. Consuming is one atomic script, so of two parallel
 * uses of one code exactly one wins, as with the database adapter. Each grant keeps the set of its
 * keys, so revoking a grant reaches them.
 */
export class RedisOidcModel implements Adapter, OnceDestroyable {
  constructor(
    private readonly redis: Redis,
    private readonly type: string,
    private readonly atRest: OidcAtRest,
    private readonly revokeGrant: (grantId: string) => Promise<void>,
  ) {}

  private storedId(id: string): string {
    return this.atRest.storedId(this.type, id);
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    const storedId = this.storedId(id);
    const key = modelKey(this.type, storedId);
    // No expiresIn: the model lives until destroyed, and so do its lookups.
    const ttl = expiresIn ? Math.max(1, Math.ceil(expiresIn)) : undefined;
    const sealed = Buffer.from(this.atRest.seal(this.type, storedId, payload)).toString('base64url');
    const multi = this.redis.multi().hset(key, 'sealed', sealed);
    const index = (indexKey: string) => (ttl ? multi.set(indexKey, storedId, 'EX', ttl) : multi.set(indexKey, storedId));
    if (ttl) multi.expire(key, ttl);
    if (payload.grantId) {
      const grant = grantKey(payload.grantId);
      multi.sadd(grant, key);
      // NX then GT: the set lives as long as its longest-lived member (and for ever with an immortal one).
      if (ttl) multi.expire(grant, ttl, 'NX').expire(grant, ttl, 'GT');
      else multi.persist(grant);
    }
    if (payload.uid) index(uidKey(this.type, payload.uid));
    if (payload.userCode) index(userCodeKey(this.type, this.atRest.storedUserCode(payload.userCode)));
    await multi.exec().then(failOnError);
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    return this.findStored(this.storedId(id));
  }

  private async findStored(storedId: string): Promise<AdapterPayload | undefined> {
    const row = await this.redis.hgetall(modelKey(this.type, storedId));
    // (A key written before the secrets_at_rest migration has a clear `payload` under a clear id: never looked up, it expires.)
    if (!row.sealed) return undefined;
    const payload = this.atRest.open(this.type, storedId, Buffer.from(row.sealed, 'base64url'));
    return row.consumed ? { ...payload, consumed: Number(row.consumed) } : payload;
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    const storedId = await this.redis.get(uidKey(this.type, uid));
    return storedId ? this.findStored(storedId) : undefined;
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    const storedId = await this.redis.get(userCodeKey(this.type, this.atRest.storedUserCode(userCode)));
    return storedId ? this.findStored(storedId) : undefined;
  }

  async destroy(id: string): Promise<void> {
    await this.destroyOnce(id);
  }

  /** Destroys the model; false when it was already gone (an interaction is resumed once: single-use-resume.ts). */
  async destroyOnce(id: string): Promise<boolean> {
    return (await this.redis.del(modelKey(this.type, this.storedId(id)))) > 0;
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await revokeGrantInRedis(this.redis, grantId);
  }

  async consume(id: string): Promise<void> {
    const storedId = this.storedId(id);
    const result = (await this.redis.eval(CONSUME, 1, modelKey(this.type, storedId), Math.floor(Date.now() / 1000))) as number;
    if (result === 1 || !grantSources.has(this.type)) return;
    if (result === 0) {
      const grantId = (await this.findStored(storedId))?.grantId;
      if (grantId) await this.revokeGrant(grantId);
    }
    throw new errors.InvalidGrant(`${this.type} already consumed`);
  }
}

function failOnError(results: Array<[Error | null, unknown]> | null) {
  const failed = results?.find(([error]) => error)?.[0];
  if (failed) throw failed;
  if (!results) throw new Error('redis transaction aborted');
}

/**
 * oidc-provider's adapter when Redis is configured: the short-lived models in Redis, the rest in the
 * database. Revoking a grant clears it in both.
 */
export function createHybridOidcAdapter(prisma: PrismaClient, redis: Redis, atRest: OidcAtRest) {
  const revokeEverywhere = async (grantId: string) => {
    await new RedisOidcModel(redis, 'Grant', atRest, revokeEverywhere).revokeByGrantId(grantId);
    await new DatabaseModel('Grant').revokeByGrantId(grantId);
  };
  const DatabaseModel = createOidcAdapter(prisma, { atRest, revokeGrant: revokeEverywhere });
  return class HybridOidcAdapter implements Adapter {
    private readonly store: Adapter;

    constructor(type: string) {
      this.store = redisModels.has(type) ? new RedisOidcModel(redis, type, atRest, revokeEverywhere) : new DatabaseModel(type);
    }

    upsert(id: string, payload: AdapterPayload, expiresIn: number) {
      return this.store.upsert(id, payload, expiresIn);
    }
    find(id: string) {
      return this.store.find(id);
    }
    findByUid(uid: string) {
      return this.store.findByUid(uid);
    }
    findByUserCode(userCode: string) {
      return this.store.findByUserCode(userCode);
    }
    destroy(id: string) {
      return this.store.destroy(id);
    }
    destroyOnce(id: string): Promise<boolean> {
      return (this.store as Adapter & OnceDestroyable).destroyOnce(id);
    }
    consume(id: string) {
      return this.store.consume(id);
    }
    revokeByGrantId(grantId: string) {
      return revokeEverywhere(grantId);
    }
  };
}
