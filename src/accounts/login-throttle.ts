import { RateLimiterRes } from 'rate-limiter-flexible';
import { NyckelError } from '../errors.ts';
import type { PrismaClient } from '../storage/db.ts';
import { Counter, type CounterStore } from '../storage/counters.ts';

/**
 * Failed password attempts counted per account and per client IP in the database (or Redis), so the
 * count holds across nodes and restarts. The account key is the account's id whichever of its names
 * was typed (one lock per account), and the typed name (normalised) when no account has it, so an
 * unknown name is throttled exactly like a known one.
 */
export class LoginThrottle {
  private readonly perAccount: Counter;
  private readonly perIp: Counter;

  constructor(
    store: CounterStore,
    readonly limits: { perAccount: number; perIp: number; windowSeconds: number },
  ) {
    this.perAccount = new Counter(store, { keyPrefix: 'login-account', points: limits.perAccount, duration: limits.windowSeconds });
    this.perIp = new Counter(store, { keyPrefix: 'login-ip', points: limits.perIp, duration: limits.windowSeconds });
  }

  /** The key an attempt is counted under: the account, or the name typed when there is none. */
  static keyOf(user: { id: string } | null, typed = ''): string {
    return user ? `user:${user.id}` : `name:${typed.normalize('NFKC').trim().toLowerCase()}`;
  }

  /**
   * Counts one attempt against both budgets before the password is checked, so parallel guesses are
   * all counted; throws rate_limited once a budget is spent. `succeeded` gives the attempt back.
   */
  async beginAttempt(accountKey: string, ip: string): Promise<{ succeeded(): Promise<void> }> {
    const results = await Promise.allSettled([this.perAccount.consume(accountKey), this.perIp.consume(ip)]);
    const refused: unknown[] = results.flatMap((r): unknown[] => (r.status === 'rejected' ? [r.reason] : []));
    if (refused.length > 0) {
      // A store that failed (not a budget spent) is the error to raise.
      const real = refused.find((reason) => !(reason instanceof RateLimiterRes));
      if (real) throw real instanceof Error ? real : new Error('the login throttle could not count the attempt', { cause: real });
      const wait = Math.max(...(refused as RateLimiterRes[]).map((res) => res.msBeforeNext));
      throw new NyckelError('rate_limited', 'too many failed sign-in attempts', {
        retryAfterSeconds: Math.max(1, Math.ceil(wait / 1000)),
      });
    }
    return {
      succeeded: async () => {
        await Promise.all([this.perAccount.delete(accountKey), this.perIp.reward(ip, 1)]);
      },
    };
  }

  /** Failed attempts counted against an account, and when they lapse (the operator's view). */
  async accountCount(user: { id: string }, now = Date.now()): Promise<{ failures: number; until: Date } | undefined> {
    const res = await this.perAccount.get(LoginThrottle.keyOf(user));
    return res && res.consumedPoints > 0 ? { failures: res.consumedPoints, until: new Date(now + res.msBeforeNext) } : undefined;
  }

  /** Lifts the per-account count (the per-IP budget is not one account's and stays). */
  async clearAccount(user: { id: string }): Promise<boolean> {
    return this.perAccount.delete(LoginThrottle.keyOf(user));
  }
}

export async function sweepExpiredRateLimits(prisma: PrismaClient, now = new Date()): Promise<number> {
  const { count } = await prisma.rateLimit.deleteMany({ where: { expire: { lte: now } } });
  return count;
}
