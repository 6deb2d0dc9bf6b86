import { RateLimiterRes } from 'rate-limiter-flexible';
import { Counter, counterStoreUnavailable, type CounterStore } from '../../security/counters.ts';

export type LockCheck = { locked: false; attemptsLeft: number } | { locked: true; retryAfterSeconds: number };

/** One family's count of a user, as an operator sees it. */
export interface FailureCount {
  family: string;
  failures: number;
  /** When the count lapses (and a lock with it). */
  until: Date | null;
}

const KEY_PREFIX = 'factor-failures';

/**
 * Wrong answers per user and factor family, in the database: the count holds across sessions,
 * browsers and IP addresses, and a resend does not reset it. An attempt is counted before the
 * answer is compared, so parallel guesses are all counted; a right answer clears the count.
 */
export class FailureLock {
  private readonly limiter: Counter;

  constructor(
    private readonly store: CounterStore,
    readonly maxFailures: number,
    private readonly lockSeconds: number,
  ) {
    this.limiter = new Counter(store, { keyPrefix: KEY_PREFIX, points: maxFailures, duration: lockSeconds });
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
    await this.noteFamily(userId, family);
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

  /** Every family with a live count for the user (the operator's view). */
  async counts(userId: string, now = Date.now()): Promise<FailureCount[]> {
    const counts = await Promise.all(
      (await this.familiesOf(userId)).map(async (family) => {
        const res = await this.limiter.get(FailureLock.key(userId, family));
        return res && res.consumedPoints > 0 ? [{ family, failures: res.consumedPoints, until: new Date(now + res.msBeforeNext) }] : [];
      }),
    );
    return counts.flat();
  }

  /** Clears every family's count of the user; how many there were. */
  async clear(userId: string): Promise<number> {
    const counts = await this.counts(userId);
    await Promise.all(counts.map((count) => this.limiter.delete(FailureLock.key(userId, count.family))));
    if (this.store.redis) await this.store.redis.del(FailureLock.familiesKey(userId));
    return counts.length;
  }

  // In the database the counters are rows that can be searched; Redis keeps a set of each user's families.
  private static familiesKey(userId: string) {
    return `${KEY_PREFIX}-families:${userId}`;
  }

  private async noteFamily(userId: string, family: string) {
    if (!this.store.redis) return;
    const key = FailureLock.familiesKey(userId);
    await this.store.redis
      .multi()
      .sadd(key, family)
      .expire(key, this.lockSeconds)
      .exec()
      .catch((error: unknown) => {
        throw counterStoreUnavailable(error);
      });
  }

  private async familiesOf(userId: string): Promise<string[]> {
    if (this.store.redis) return this.store.redis.smembers(FailureLock.familiesKey(userId));
    const rows = await this.store.prisma.rateLimit.findMany({
      where: { key: { startsWith: `${KEY_PREFIX}:`, endsWith: `:${userId}` } },
      select: { key: true },
    });
    return rows.map((row) => row.key.slice(KEY_PREFIX.length + 1, -(userId.length + 1)));
  }
}
