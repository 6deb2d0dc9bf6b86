import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';

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
 * Against SMS pumping, the first check before any provider is called: the destination country must
 * be allowed. The cooldown and the hourly budgets (per number, account, client IP and in all) follow
 * in the send guard every channel shares (src/factors/shared/send-guard.ts).
 */
export function countryAllowed(e164: string, allowedCountries: readonly string[]): boolean {
  const country = countryOf(e164);
  return Boolean(country && allowedCountries.includes(country));
}
