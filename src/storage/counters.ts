import type { Redis } from 'ioredis';
import { RateLimiterRedis, RateLimiterRes, type RateLimiterStoreAbstract } from 'rate-limiter-flexible';
import { NyckelError } from '../errors.ts';
import type { PrismaClient } from './db.ts';
import { DatabaseCounters } from './database-counters.ts';

/** Where rate-limit and failure counters are kept: Redis when configured, else the database. */
export interface CounterStore {
  prisma: PrismaClient;
  redis?: Redis;
}

export interface CounterOptions {
  keyPrefix: string;
  points: number;
  duration: number;
}

/**
 * One budget of rate-limiter-flexible on the configured store. With Redis, an unreachable Redis
 * refuses with temporarily_unavailable (503): a counter that cannot be read never lets a guess
 * through, and no second, separate count is started elsewhere.
 */
export class Counter {
  private readonly limiter: RateLimiterStoreAbstract;

  constructor(
    private readonly store: CounterStore,
    options: CounterOptions,
  ) {
    this.limiter = store.redis
      ? new RateLimiterRedis({ storeClient: store.redis, rejectIfRedisNotReady: true, ...options })
      : new DatabaseCounters(store.prisma, options);
  }

  consume(key: string, points = 1): Promise<RateLimiterRes> {
    return this.guard(() => this.limiter.consume(key, points));
  }

  get(key: string): Promise<RateLimiterRes | null> {
    return this.guard(() => this.limiter.get(key));
  }

  delete(key: string): Promise<boolean> {
    return this.guard(() => this.limiter.delete(key));
  }

  reward(key: string, points = 1): Promise<RateLimiterRes> {
    return this.guard(() => this.limiter.reward(key, points));
  }

  private async guard<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      if (error instanceof RateLimiterRes || !this.store.redis) throw error;
      throw counterStoreUnavailable(error);
    }
  }
}

export function counterStoreUnavailable(cause: unknown): NyckelError {
  return new NyckelError('temporarily_unavailable', 'the rate-limit store (Redis) is unreachable', { cause, retryAfterSeconds: 5 });
}
