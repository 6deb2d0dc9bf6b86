import { RateLimiterRes } from 'rate-limiter-flexible';
import type { AuditLog } from '../../accounts/audit.ts';
import type { Settings } from '../../config/settings.ts';
import { Counter, type CounterStore } from '../../storage/counters.ts';
import type { SecretBox } from '../../security/crypto.ts';
import type { ChallengeScope } from '../contract.ts';

/** A channel codes and links are sent over; it names the counters and the audit event (`mail.refused`, `sms.refused`). */
export type SendChannel = 'mail' | 'sms';

export type SendRefusalReason = 'cooldown' | 'budget_address' | 'budget_number' | 'budget_account' | 'budget_ip' | 'budget_global';

export interface SendRefusal {
  reason: SendRefusalReason;
  retryAfterSeconds: number;
  /** How long ago the send that holds the cooldown was admitted (cooldown refusals only). */
  sentAgoMs?: number;
}

export interface SendGuardOptions {
  channel: SendChannel;
  /** What a target is called in its budget's reason: `budget_address`, `budget_number`. */
  targetName: 'address' | 'number';
  /** Seconds between two sends to one target for one account; 0: none. */
  cooldownSeconds: number;
  /** Sends per hour; `global` (all sends of the channel) only where set. */
  budgets: { perTarget: number; perAccount: number; perIp: number; global?: number };
}

const HOUR = 3600;

/**
 * Every send of a code or link over one channel passes here before anything is sent or queued: one
 * cooldown per account and target (start, resend, enrolment, fallback alike), then hourly budgets per
 * target, per account, per client IP (and in all, for SMS), narrowest first; the first refusal stops
 * and gives back what the send had taken, so a target being flooded does not use up the budgets of
 * everyone else, and a refused send counts nowhere. A decoy (a target that is
 * not registered) passes here exactly like a real send, so the answers never tell them apart.
 * Targets are counted under a keyed hash, never in clear.
 */
export class SendGuard {
  private readonly cooldown?: Counter;
  private readonly budgets: Array<{ reason: SendRefusalReason; key: (send: ScopedSend) => string; limiter: Counter }>;

  constructor(
    store: CounterStore,
    private readonly box: SecretBox,
    readonly options: SendGuardOptions,
    private readonly audit?: AuditLog,
  ) {
    const { channel, budgets } = options;
    // A duration of 0 would make rate-limiter-flexible keep the key for ever.
    if (options.cooldownSeconds > 0) this.cooldown = new Counter(store, { keyPrefix: `${channel}-cooldown`, points: 1, duration: options.cooldownSeconds });
    const budget = (reason: SendRefusalReason, points: number, key: (send: ScopedSend) => string) => ({
      reason,
      key,
      limiter: new Counter(store, { keyPrefix: `${channel}-${reason}`, points, duration: HOUR }),
    });
    this.budgets = [
      budget(`budget_${options.targetName}`, budgets.perTarget, (send) => send.target),
      budget('budget_account', budgets.perAccount, (send) => send.userId),
      budget('budget_ip', budgets.perIp, (send) => send.ip || 'unknown'),
      ...(budgets.global ? [budget('budget_global', budgets.global, () => 'all')] : []),
    ];
  }

  /**
   * Takes the cooldown and one send from each budget; the refusal, or undefined when the send may go.
   * A refused send counts in no budget: what was taken before the refusal is given back.
   */
  async take(ctx: ChallengeScope, target: string): Promise<SendRefusal | undefined> {
    const send = this.scoped(ctx, target);
    const cooldownKey = `${send.userId}:${send.target}`;
    if (this.cooldown) {
      const refused = await this.consume(this.cooldown, cooldownKey);
      if (refused) return { reason: 'cooldown', retryAfterSeconds: refused.seconds, sentAgoMs: this.options.cooldownSeconds * 1000 - refused.ms };
    }
    const taken: Array<() => Promise<unknown>> = this.cooldown ? [() => this.cooldown!.delete(cooldownKey)] : [];
    for (const { reason, key, limiter } of this.budgets) {
      const refused = await this.consume(limiter, key(send));
      if (refused) {
        for (const giveBack of taken) await giveBack();
        return { reason, retryAfterSeconds: refused.seconds };
      }
      taken.push(() => limiter.reward(key(send)));
    }
    return undefined;
  }

  /** Gives back the cooldown of a send that failed at once (the user may try again straight away). */
  async release(ctx: ChallengeScope, target: string): Promise<void> {
    const send = this.scoped(ctx, target);
    await this.cooldown?.delete(`${send.userId}:${send.target}`);
  }

  /** Audits a refusal (`mail.refused`, `sms.refused`) with the reason, the masked target and the client. */
  async recordRefusal(ctx: ChallengeScope, refusal: Pick<SendRefusal, 'reason'> | { reason: string }, data: Record<string, unknown>): Promise<void> {
    await this.audit?.record(`${this.options.channel}.refused`, {
      userId: ctx.user.id,
      ip: ctx.ip,
      userAgent: ctx.userAgent,
      data: { reason: refusal.reason, client: ctx.clientId, ...data },
    });
  }

  private scoped(ctx: ChallengeScope, target: string): ScopedSend {
    return { target: this.box.mac(`send-target-${this.options.channel}`, target.trim().toLowerCase()), userId: ctx.user.id, ip: ctx.ip };
  }

  private async consume(limiter: Counter, key: string): Promise<{ seconds: number; ms: number } | undefined> {
    try {
      await limiter.consume(key);
      return undefined;
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) throw error;
      return { seconds: Math.max(1, Math.ceil(error.msBeforeNext / 1000)), ms: error.msBeforeNext };
    }
  }
}

interface ScopedSend {
  target: string;
  userId: string;
  ip: string;
}

/** The guards of the channels that carry codes and links. */
export interface SendGuards {
  mail: SendGuard;
  sms: SendGuard;
}

export function sendGuards(store: CounterStore, box: SecretBox, settings: Pick<Settings, 'factors' | 'mail' | 'sms'>, audit?: AuditLog): SendGuards {
  const cooldownSeconds = settings.factors.resendCooldownSeconds;
  const { mail, sms } = settings;
  return {
    mail: new SendGuard(
      store,
      box,
      {
        channel: 'mail',
        targetName: 'address',
        cooldownSeconds,
        budgets: { perTarget: mail.budgets.perAddress, perAccount: mail.budgets.perAccount, perIp: mail.budgets.perIp },
      },
      audit,
    ),
    sms: new SendGuard(
      store,
      box,
      {
        channel: 'sms',
        targetName: 'number',
        cooldownSeconds,
        budgets: { perTarget: sms.budgets.perNumber, perAccount: sms.budgets.perAccount, perIp: sms.budgets.perIp, global: sms.budgets.global },
      },
      audit,
    ),
  };
}
