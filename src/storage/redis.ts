import { Redis } from 'ioredis';
import type { Logger } from '../logger.ts';

/**
 * The Redis connection of one node. Commands fail at once while Redis is unreachable (no offline
 * queue, one retry), so a request that needs Redis gets a clean 503 instead of hanging or being
 * replayed later; the connection keeps reconnecting in the background and recovers by itself.
 * Every key carries the installation's prefix.
 */
export interface RedisStore {
  client: Redis;
  prefix: string;
  /** A second connection in subscriber mode (pub/sub cannot share the command connection). */
  subscriber: Redis;
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

export class RedisUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RedisUnavailableError';
  }
}

function connect(url: string, prefix: string, logger: Logger, role: string): Redis {
  const client = new Redis(url, {
    keyPrefix: prefix,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    commandTimeout: 2000,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
    // Commands issued in one turn of the event loop (parallel requests, Promise.all) go out in one write.
    enableAutoPipelining: true,
  });
  let down = false;
  client.on('error', (error: Error) => {
    if (!down) logger.warn({ err: error, role }, 'redis unreachable; requests that need it answer 503 until it is back');
    down = true;
  });
  client.on('ready', () => {
    if (down) logger.info({ role }, 'redis reachable again');
    down = false;
  });
  return client;
}

export async function openRedis(options: { url: string; prefix: string }, logger: Logger): Promise<RedisStore> {
  const client = connect(options.url, options.prefix, logger, 'commands');
  const subscriber = connect(options.url, options.prefix, logger, 'subscriber');
  try {
    await Promise.all([client.connect(), subscriber.connect()]);
  } catch (error) {
    client.disconnect();
    subscriber.disconnect();
    throw new RedisUnavailableError(`Redis at ${redactUrl(options.url)} did not answer: ${(error as Error).message}`, { cause: error });
  }
  return {
    client,
    subscriber,
    prefix: options.prefix,
    ping: async () => {
      try {
        return (await client.ping()) === 'PONG';
      } catch {
        return false;
      }
    },
    close: async () => {
      await Promise.allSettled([client.quit(), subscriber.quit()]);
      client.disconnect();
      subscriber.disconnect();
    },
  };
}

/** The URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'redis';
  }
}
