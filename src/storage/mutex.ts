import crypto from 'node:crypto';
import { NyckelError } from '../errors.ts';
import { counterStoreUnavailable, type CounterStore } from './counters.ts';
import { driverIfClient, driverOf } from './sql.ts';

export interface MutexOptions {
  /** How long a holder that died keeps the lock before others may take it. */
  leaseMs: number;
  /** How long a caller waits for the lock before giving up with temporarily_unavailable. */
  waitMs: number;
}

const DEFAULTS: MutexOptions = { leaseMs: 30_000, waitMs: 15_000 };
const KEY_PREFIX = 'mutex:';

/** Releases a Redis lease only if it is still the caller's (a lease that ran out may be someone else's). */
const RELEASE_SCRIPT = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

interface Lease {
  tryAcquire(key: string, holder: string, leaseMs: number): Promise<boolean>;
  release(key: string, holder: string): Promise<void>;
}

function redisLease(store: Required<Pick<CounterStore, 'redis'>>): Lease {
  return {
    tryAcquire: async (key, holder, leaseMs) => {
      const answer = await store.redis.set(key, holder, 'PX', leaseMs, 'NX').catch((error: unknown) => {
        throw counterStoreUnavailable(error);
      });
      return answer === 'OK';
    },
    release: async (key, holder) => {
      await store.redis.eval(RELEASE_SCRIPT, 1, key, holder).catch(() => undefined);
    },
  };
}

/** A lease row in `rate_limits` (key, points = holder, expire): taken when absent or run out. */
function databaseLease(store: CounterStore): Lease {
  const holderNumber = (holder: string) => Number.parseInt(holder.slice(0, 7), 16);
  return {
    tryAcquire: async (key, holder, leaseMs) => {
      const expire = new Date(Date.now() + leaseMs);
      const taken = await driverOf(store.prisma).changed`
        INSERT INTO rate_limits (key, points, expire) VALUES (${key}, ${holderNumber(holder)}, ${expire})
        ON CONFLICT (key) DO UPDATE SET points = EXCLUDED.points, expire = EXCLUDED.expire
         WHERE rate_limits.expire IS NULL OR rate_limits.expire <= now()`;
      return taken === 1;
    },
    release: async (key, holder) => {
      await driverOf(store.prisma).changed`DELETE FROM rate_limits WHERE key = ${key} AND points = ${holderNumber(holder)}`;
    },
  };
}

/**
 * The leases of the embedded database, in this process: no other process can open that database (its
 * data directory is locked), so a lease row would only cost two statements per section. Kept per
 * database, so every mutex on it shares them, as they share its rows.
 */
interface HeldLease {
  holder: string;
  expires: number;
}
const processLeases = new WeakMap<object, Map<string, HeldLease>>();

function processLease(database: object): Lease {
  const held = processLeases.get(database) ?? new Map<string, HeldLease>();
  processLeases.set(database, held);
  return {
    tryAcquire: async (key, holder, leaseMs) => {
      const now = Date.now();
      if ((held.get(key)?.expires ?? 0) > now) return false;
      held.set(key, { holder, expires: now + leaseMs });
      return true;
    },
    release: async (key, holder) => {
      if (held.get(key)?.holder === holder) held.delete(key);
    },
  };
}

/**
 * Runs critical sections one at a time per key, across every node: in this process by a queue per
 * key, between processes by a lease in Redis (when configured) or in the database (in this process's
 * memory for the embedded one). Used where a check and what follows from it must not interleave (a
 * failure count read, an answer compared, the count written), which a counter alone cannot give.
 */
export class KeyedMutex {
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly lease: Lease;
  private readonly options: MutexOptions;

  constructor(store: CounterStore, options: Partial<MutexOptions> = {}) {
    const embedded = driverIfClient(store.prisma)?.embedded ?? false;
    this.lease = store.redis ? redisLease({ redis: store.redis }) : embedded ? processLease(store.prisma) : databaseLease(store);
    this.options = { ...DEFAULTS, ...options };
  }

  async run<T>(key: string, section: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(key) ?? Promise.resolve();
    const mine = previous.catch(() => undefined).then(() => this.underLease(key, section));
    const tail = mine.catch(() => undefined);
    this.queues.set(key, tail);
    try {
      return await mine;
    } finally {
      if (this.queues.get(key) === tail) this.queues.delete(key);
    }
  }

  private async underLease<T>(key: string, section: () => Promise<T>): Promise<T> {
    const leaseKey = `${KEY_PREFIX}${key}`;
    const holder = crypto.randomBytes(8).toString('hex');
    const deadline = Date.now() + this.options.waitMs;
    let pause = 5;
    while (!(await this.lease.tryAcquire(leaseKey, holder, this.options.leaseMs))) {
      if (Date.now() >= deadline)
        throw new NyckelError('temporarily_unavailable', 'another check of the same answer is still running', { retryAfterSeconds: 2 });
      await new Promise((resolve) => setTimeout(resolve, pause));
      pause = Math.min(pause * 2, 100);
    }
    try {
      return await section();
    } finally {
      await this.lease.release(leaseKey, holder);
    }
  }
}
