import { RateLimiterPrisma, RateLimiterRes } from 'rate-limiter-flexible';
import type { PrismaClient } from '../../storage/db.ts';

export type LockCheck = { locked: false; attemptsLeft: number } | { locked: true; retryAfterSeconds: number };

/**
 * Wrong answers per user and factor family, in the database: the count holds across sessions,
 * browsers and IP addresses, and a resend does not reset it. An attempt is counted before the
 * answer is compared, so parallel guesses are all counted; a right answer clears the count.
 */
export class FailureLock {
  private readonly limiter: RateLimiterPrisma;

  constructor(prisma: PrismaClient, readonly maxFailures: number, lockSeconds: number) {
    this.limiter = new RateLimiterPrisma({
      storeClient: prisma,
      tableName: 'rateLimit',
      keyPrefix: 'factor-failures',
      points: maxFailures,
      duration: lockSeconds,
      clearExpiredByTimeout: false,
    });
  }

  private static key(userId: string, family: string) {
    return `${family}:${userId}`;
  }

  async check(userId: string, family: string): Promise<LockCheck> {
    const res = await this.limiter.get(FailureLock.key(userId, family));
    if (res && res.consumedPoints >= this.maxFailures) {
      return { locked: true, retryAfterSeconds: Math.max(1, Math.ceil(res.msBeforeNext / 1000)) };
    }
    return { locked: false, attemptsLeft: this.maxFailures - (res?.consumedPoints ?? 0) };
  }

  /** Counts one attempt; `locked` when the budget was already spent. */
  async beginAttempt(userId: string, family: string): Promise<LockCheck & { succeeded?: () => Promise<void> }> {
    const key = FailureLock.key(userId, family);
    try {
      const res = await this.limiter.consume(key);
      return {
        locked: false,
        attemptsLeft: res.remainingPoints,
        succeeded: async () => {
          await this.limiter.delete(key);
        },
      };
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) throw error;
      return { locked: true, retryAfterSeconds: Math.max(1, Math.ceil(error.msBeforeNext / 1000)) };
    }
  }

  async reset(userId: string, family: string): Promise<void> {
    await this.limiter.delete(FailureLock.key(userId, family));
  }
}
