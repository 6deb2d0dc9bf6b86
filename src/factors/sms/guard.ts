import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';
import { RateLimiterRes } from 'rate-limiter-flexible';
import { Counter, type CounterStore } from '../../security/counters.ts';
import type { Settings } from '../../config/settings.ts';

export type SmsRefusal = 'country' | 'budget_number' | 'budget_account' | 'budget_ip' | 'budget_global';

/** A typed number in E.164, or undefined when it is not a valid phone number. National numbers are read as `defaultCountry`'s. */
export function parsePhone(typed: string, defaultCountry?: string): string | undefined {
  const cleaned = typed.trim();
  if (!/^[+0-9()\s.-]{4,32}$/.test(cleaned)) return undefined;
  const phone = parsePhoneNumberFromString(cleaned, defaultCountry as CountryCode | undefined);
  return phone?.isValid() ? phone.number : undefined;
}

export function countryOf(e164: string): string | undefined {
  return parsePhoneNumberFromString(e164)?.country;
}

/**
 * Protection against SMS pumping, checked before any provider is called: the destination country
 * must be allowed, and four hourly budgets (per number, per account, per client IP, in all) must
 * have room. The narrowest budget is taken first and the first refusal stops, so a number that is
 * being pumped does not use up the global budget of everyone else.
 */
export class SmsGuard {
  private readonly budgets: Array<{ reason: SmsRefusal; limiter: Counter }>;

  constructor(
    store: CounterStore,
    private readonly settings: Settings['sms'],
  ) {
    const budget = (reason: SmsRefusal, points: number) => ({ reason, limiter: new Counter(store, { keyPrefix: `sms-${reason}`, points, duration: 3600 }) });
    this.budgets = [
      budget('budget_number', settings.budgets.perNumber),
      budget('budget_account', settings.budgets.perAccount),
      budget('budget_ip', settings.budgets.perIp),
      budget('budget_global', settings.budgets.global),
    ];
  }

  countryAllowed(e164: string): boolean {
    const country = countryOf(e164);
    return Boolean(country && this.settings.allowedCountries.includes(country));
  }

  /** Takes one send from each budget; the refusal and how long until it lifts, or undefined when the send may go. */
  async take(input: { e164: string; userId: string; ip: string }): Promise<{ reason: SmsRefusal; retryAfterSeconds?: number } | undefined> {
    if (!this.countryAllowed(input.e164)) return { reason: 'country' };
    const keys: Record<string, string> = { budget_number: input.e164, budget_account: input.userId, budget_ip: input.ip || 'unknown', budget_global: 'all' };
    for (const { reason, limiter } of this.budgets) {
      try {
        await limiter.consume(keys[reason]);
      } catch (error) {
        if (!(error instanceof RateLimiterRes)) throw error;
        return { reason, retryAfterSeconds: Math.max(1, Math.ceil(error.msBeforeNext / 1000)) };
      }
    }
    return undefined;
  }
}
