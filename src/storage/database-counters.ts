import { RateLimiterPrisma } from 'rate-limiter-flexible';
import type { PrismaClient } from './db.ts';
import { driverOf, type SqlDriver } from './sql.ts';

interface CounterRow {
  points: number;
  expire: Date | null;
}

/** One count (or reset) waiting for the next statement. */
interface PendingCount {
  key: string;
  points: number;
  /** A reset gives a window that ends now: the row counts as deleted (the next count starts a new one). */
  expire: Date | null;
  settle(row: CounterRow & { existed: boolean }): void;
  fail(error: unknown): void;
}

// A row is new when xmax is 0: `existed` is what a delete of the key would have answered.
const COUNT = `
  INSERT INTO rate_limits (key, points, expire)
  SELECT key, points, expire FROM unnest($1::text[], $2::int[], $3::timestamptz[]) AS t(key, points, expire) ORDER BY key
  ON CONFLICT (key) DO UPDATE SET
    points = CASE WHEN EXCLUDED.expire <= $4 OR rate_limits.expire <= $4 THEN EXCLUDED.points ELSE rate_limits.points + EXCLUDED.points END,
    expire = CASE WHEN EXCLUDED.expire <= $4 OR rate_limits.expire <= $4 THEN EXCLUDED.expire ELSE rate_limits.expire END
  RETURNING key, points, expire, xmax <> 0 AS existed`;

/**
 * The counts and resets of one turn of the event loop, in one statement (several only when a key comes
 * twice, each in the order asked): a password sign-in counts the account and the IP at once, and
 * gives both back at once, as do the sign-ins of other requests in that turn. Keys are written in
 * sorted order, so two statements never wait for each other's rows (no deadlock).
 */
class CountStatements {
  private queue: PendingCount[] = [];

  constructor(private readonly sql: SqlDriver) {}

  add(count: Omit<PendingCount, 'settle' | 'fail'>): Promise<CounterRow & { existed: boolean }> {
    return new Promise((settle, fail) => {
      this.queue.push({ ...count, settle, fail });
      if (this.queue.length === 1) setImmediate(() => void this.flush());
    });
  }

  private async flush(): Promise<void> {
    let waiting = this.queue;
    this.queue = [];
    while (waiting.length > 0) {
      const keys = new Set<string>();
      const batch: PendingCount[] = [];
      const later: PendingCount[] = [];
      for (const count of waiting) {
        if (keys.has(count.key)) {
          later.push(count);
        } else {
          keys.add(count.key);
          batch.push(count);
        }
      }
      await this.run(batch);
      waiting = later;
    }
  }

  private async run(batch: PendingCount[]): Promise<void> {
    const now = new Date();
    try {
      const { rows } = await this.sql.query<CounterRow & { key: string; existed: boolean }>(COUNT, [
        batch.map((c) => c.key),
        batch.map((c) => c.points),
        batch.map((c) => c.expire),
        now,
      ]);
      const byKey = new Map(rows.map((row) => [row.key, row]));
      for (const count of batch) {
        const row = byKey.get(count.key);
        if (row) count.settle({ points: row.points, expire: row.expire, existed: row.existed });
        else count.fail(new Error(`the rate-limit count of ${count.key} returned no row`));
      }
    } catch (error) {
      for (const count of batch) count.fail(error);
    }
  }
}

const statementsOf = new WeakMap<PrismaClient, CountStatements>();

/**
 * rate-limiter-flexible's Prisma store, with each count in one statement shared by the counts of the
 * same moment: its own store deletes an expired row and then upserts (two statements on every guess
 * and send, and a window between them). Here an expired row starts its new window inside the
 * upsert, atomically, and a delete is a reset of the window in the same statement (the sweep removes
 * the row later).
 */
export class DatabaseCounters extends RateLimiterPrisma {
  private readonly statements: CountStatements;

  constructor(
    private readonly prisma: PrismaClient,
    options: { keyPrefix: string; points: number; duration: number },
  ) {
    super({ storeClient: prisma, tableName: 'rateLimit', clearExpiredByTimeout: false, ...options });
    let statements = statementsOf.get(prisma);
    if (!statements) statementsOf.set(prisma, (statements = new CountStatements(driverOf(prisma))));
    this.statements = statements;
  }

  // Overrides the store's (untyped) JS methods; rate-limiter-flexible reads `points` and `expire`.
  _upsert(key: string, points: number, msDuration: number, forceExpire = false): Promise<CounterRow> {
    const now = new Date();
    const expire = msDuration > 0 ? new Date(now.getTime() + msDuration) : null;
    if (!forceExpire) return this.statements.add({ key, points, expire });
    // `set` and `block` (not used by Nyckel's counters today): the window is replaced whatever it was.
    return driverOf(this.prisma).rows<CounterRow>`
      INSERT INTO rate_limits (key, points, expire) VALUES (${key}, ${points}, ${expire})
      ON CONFLICT (key) DO UPDATE SET points = EXCLUDED.points, expire = EXCLUDED.expire
      RETURNING points, expire`.then((rows) => rows[0]);
  }

  _get(key: string): Promise<CounterRow | null> {
    return driverOf(this.prisma)
      .rows<CounterRow>`SELECT points, expire FROM rate_limits WHERE key = ${key} AND (expire IS NULL OR expire > ${new Date()})`.then(
      (rows) => rows[0] ?? null,
    );
  }

  _delete(key: string): Promise<boolean> {
    return this.statements.add({ key, points: 0, expire: new Date() }).then((row) => row.existed);
  }
}
