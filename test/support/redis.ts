import crypto from 'node:crypto';
import { Redis } from 'ioredis';

export const redisTestUrl = process.env.REDIS_URL_TEST ?? 'redis://127.0.0.1:6379';

/** Whether this jest project runs Nyckel with Redis (the `postgres` project: the production setup). */
export function testUsesRedis(): boolean {
  return process.env.NYCKEL_TEST_REDIS === 'true';
}

/** A key prefix of its own for one Nyckel under test, and a way to delete everything under it. */
export function freshRedisPrefix(): { prefix: string; drop(): Promise<void> } {
  const prefix = `nyckel-test-${crypto.randomBytes(6).toString('hex')}:`;
  return { prefix, drop: () => deleteKeys(prefix) };
}

export async function deleteKeys(prefix: string): Promise<void> {
  const redis = new Redis(redisTestUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      if (keys.length) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/** Keys under a prefix (without it), to look at what Nyckel wrote. */
export async function keysUnder(prefix: string): Promise<string[]> {
  const redis = new Redis(redisTestUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const keys = await redis.keys(`${prefix}*`);
    return keys.map((key) => key.slice(prefix.length));
  } finally {
    redis.disconnect();
  }
}

/** Every key under a prefix with its value (hash fields, string, set members), as text to search. */
export async function dumpUnder(prefix: string): Promise<string> {
  const redis = new Redis(redisTestUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const lines: string[] = [];
    for (const key of await redis.keys(`${prefix}*`)) {
      const type = await redis.type(key);
      const value =
        type === 'hash' ? await redis.hgetall(key) : type === 'string' ? await redis.get(key) : type === 'set' ? await redis.smembers(key) : `(${type})`;
      lines.push(`${key} ${JSON.stringify(value)}`);
    }
    return lines.join('\n');
  } finally {
    redis.disconnect();
  }
}
