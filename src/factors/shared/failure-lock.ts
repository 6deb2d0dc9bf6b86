import { RateLimiterRes } from 'rate-limiter-flexible';
import { Counter, counterStoreUnavailable, type CounterStore } from '../../storage/counters.ts';
import { KeyedMutex } from '../../storage/mutex.ts';
import type { VerifyOutcome } from '../contract.ts';

export type LockCheck = { locked: false; attemptsLeft: number } | { locked: true; retryAfterSeconds: number };

/** One family's count of a user, as an operator sees it. */
export interface FailureCount {
  family: string;
  failures: number;
  /** When the count lapses (and a lock with it). */
  until: Date | null;
}

/** How a check of an answer came out, as the lock counts it: only a wrong answer is a failure. */
export type Verdict = 'right' | 'wrong' | 'neutral';

export type Judged<T> = { locked: true; retryAfterSeconds: number } | { locked: false; value: T; verdict: Verdict; attemptsLeft: number };

const KEY_PREFIX = 'factor-failures';

/**
 * Wrong answers per user and factor family: the count holds across sessions, browsers, IP addresses
 * and nodes, and a resend does not reset it. Every check of an answer runs under a mutex of the user
 * and family, so the count read before comparing is the count of every earlier answer: parallel
 * guesses cannot outrun the lock, and of parallel right answers (a double submit) the later ones
 * find the code used, and are never counted as wrong. A right answer clears the count.
 */
export class FailureLock {
  private readonly limiter: Counter;
  private readonly mutex: KeyedMutex;

  constructor(
    private readonly store: CounterStore,
    readonly maxFailures: number,
    private readonly lockSeconds: number,
  ) {
    this.limiter = new Counter(store, { keyPrefix: KEY_PREFIX, points: maxFailures, duration: lockSeconds });
    this.mutex = new KeyedMutex(store);
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

  /**
   * Runs one check of an answer for the user's family, one at a time: refused unread while the family
   * is locked; a `wrong` verdict is counted, a `right` one clears the count, `neutral` (used, expired,
   * nothing to check) changes nothing.
   */
  judge<T>(userId: string, family: string, check: () => Promise<{ verdict: Verdict; value: T }>): Promise<Judged<T>> {
    const key = FailureLock.key(userId, family);
    return this.mutex.run(key, async () => {
      const state = await this.check(userId, family);
      if (state.locked) return state;
      const { verdict, value } = await check();
      // Counts change only under this mutex: with none read above there is nothing to clear.
      if (verdict === 'right' && state.attemptsLeft < this.maxFailures) await this.limiter.delete(key);
      if (verdict !== 'wrong') return { locked: false, value, verdict, attemptsLeft: state.attemptsLeft };
      await this.noteFamily(userId, family);
      try {
        const res = await this.limiter.consume(key);
        return { locked: false, value, verdict, attemptsLeft: res.remainingPoints };
      } catch (error) {
        if (!(error instanceof RateLimiterRes)) throw error;
        return { locked: false, value, verdict, attemptsLeft: 0 };
      }
    });
  }

  /**
   * `judge` for a factor's answer: wrong codes count, a right one clears the count; the last wrong
   * answer says the method is now locked and for how long.
   */
  async answer(userId: string, family: string, check: () => Promise<VerifyOutcome>): Promise<VerifyOutcome> {
    const judged = await this.judge(userId, family, async () => {
      const outcome = await check();
      return { value: outcome, verdict: verdictOf(outcome) };
    });
    if (judged.locked) return { status: 'failed', reason: 'locked', retryAfterSeconds: judged.retryAfterSeconds };
    if (judged.verdict !== 'wrong') return judged.value;
    if (judged.attemptsLeft > 0) return { ...judged.value, attemptsLeft: judged.attemptsLeft } as VerifyOutcome;
    const now = await this.check(userId, family);
    return { status: 'failed', reason: 'locked', retryAfterSeconds: now.locked ? now.retryAfterSeconds : 1 };
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

/** Only a wrong answer counts; a right one (even a repeated one) clears; the rest is neither. */
function verdictOf(outcome: VerifyOutcome): Verdict {
  if (outcome.status === 'verified') return 'right';
  return outcome.status === 'failed' && outcome.reason === 'wrong_code' ? 'wrong' : 'neutral';
}
