import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Context, Next } from 'koa';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { RateLimiterRes } from 'rate-limiter-flexible';
import { NyckelError } from '../errors.ts';
import { Counter, type CounterStore } from '../storage/counters.ts';
import { sameRoute } from './route-path.ts';

/** RFC 8628's default polling interval: a device that asks again sooner is told slow_down. */
export const POLLING_INTERVAL_SECONDS = 5;

/**
 * The limits of device sign-ins, counted in the database (or Redis) so they hold across nodes:
 *
 * - user codes typed on the code page, per client IP. Every code sent counts before oidc-provider
 *   looks it up (so parallel guesses are all counted) and is given back when it named a waiting
 *   device sign-in: only wrong codes use up the budget;
 * - a device's polls of the token endpoint, one per interval;
 * - the confirmation of a device code, once (oidc-provider reads and then writes it, so two parallel
 *   confirmations would both go on to a sign-in).
 */
export class DeviceFlowLimits {
  private readonly perIp: Counter;
  private readonly polls: Counter;
  private readonly confirmations: Counter;
  /** The requests (shared by Nyckel's app and oidc-provider's) whose code named a device sign-in. */
  private readonly found = new WeakSet<IncomingMessage>();

  constructor(
    store: CounterStore,
    limits: { perIp: number; windowSeconds: number; codeTtlSeconds: number },
    private readonly codePath: string,
  ) {
    this.perIp = new Counter(store, { keyPrefix: 'user-code-ip', points: limits.perIp, duration: limits.windowSeconds });
    this.polls = new Counter(store, { keyPrefix: 'device-poll', points: 1, duration: POLLING_INTERVAL_SECONDS });
    this.confirmations = new Counter(store, { keyPrefix: 'device-confirm', points: 1, duration: limits.codeTtlSeconds });
  }

  /** Runs before oidc-provider: a code sent to the code page is counted, or refused once the budget is spent. */
  readonly middleware = async (ctx: Context, next: Next): Promise<void> => {
    if (ctx.method !== 'POST' || !sameRoute(ctx.path, this.codePath)) {
      await next();
      return;
    }
    try {
      await this.perIp.consume(ctx.ip);
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) throw error;
      throw new NyckelError('rate_limited', 'too many device codes tried', { retryAfterSeconds: Math.max(1, Math.ceil(error.msBeforeNext / 1000)) });
    }
    await next();
    if (this.found.has(ctx.req)) await this.perIp.reward(ctx.ip, 1);
  };

  /** Called from oidc-provider's device pages once the code sent named a device sign-in. */
  codeFound(ctx: KoaContextWithOIDC) {
    this.found.add(ctx.req);
  }

  /** Counts a poll of a device code still waiting; true when the previous one was less than an interval ago. */
  pollTooSoon(deviceCode: string): Promise<boolean> {
    return spent(this.polls, deviceCode);
  }

  /** Claims the confirmation of a device code (by its id); false when another request already has. */
  async claimConfirmation(deviceCodeId: string): Promise<boolean> {
    return !(await spent(this.confirmations, deviceCodeId));
  }
}

/** Counts one use of `secret`'s budget (kept under its hash); true when it was already spent. */
async function spent(counter: Counter, secret: string): Promise<boolean> {
  try {
    await counter.consume(createHash('sha256').update(secret).digest('base64url'));
    return false;
  } catch (error) {
    if (error instanceof RateLimiterRes) return true;
    throw error;
  }
}
