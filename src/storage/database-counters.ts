import { RateLimiterPrisma } from 'rate-limiter-flexible';
import type { PrismaClient } from './db.ts';

interface CounterRow {
  points: number;
  expire: Date | null;
}

/**
 * rate-limiter-flexible's Prisma store, with each count in one statement: its own store deletes an
 * expired row and then upserts (two statements on every guess and send, and a window between them).
 * Here an expired row starts its new window inside the upsert, atomically.
 */
export class DatabaseCounters extends RateLimiterPrisma {
  constructor(
    private readonly prisma: PrismaClient,
    options: { keyPrefix: string; points: number; duration: number },
  ) {
    super({ storeClient: prisma, tableName: 'rateLimit', clearExpiredByTimeout: false, ...options });
  }

  // Overrides the store's (untyped) JS method; rate-limiter-flexible reads `points` and `expire`.
  _upsert(key: string, points: number, msDuration: number, forceExpire = false): Promise<CounterRow> {
    const now = new Date();
    const expire = msDuration > 0 ? new Date(now.getTime() + msDuration) : null;
    return this.prisma.$queryRaw<CounterRow[]>`
      INSERT INTO rate_limits (key, points, expire) VALUES (${key}, ${points}, ${expire})
      ON CONFLICT (key) DO UPDATE SET
        points = CASE WHEN ${forceExpire} OR rate_limits.expire <= ${now} THEN EXCLUDED.points ELSE rate_limits.points + EXCLUDED.points END,
        expire = CASE WHEN ${forceExpire} OR rate_limits.expire <= ${now} THEN EXCLUDED.expire ELSE rate_limits.expire END
      RETURNING points, expire`.then((rows) => rows[0]);
  }
}
