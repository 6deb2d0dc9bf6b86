/**
 * Swedish personal identity numbers (personnummer, and samordningsnummer with the day plus 60):
 * YYYYMMDD-NNNC, or YYMMDD-NNNC (a `+` instead of `-` for someone 100 or older). C is the Luhn
 * check digit over the ten digits YYMMDDNNN. Stored and compared as the twelve digits BankID returns.
 */
export type PersonalNumberProblem = 'format' | 'date' | 'check_digit';

export function luhnValid(tenDigits: string): boolean {
  let sum = 0;
  for (let i = 0; i < tenDigits.length; i++) {
    let digit = Number(tenDigits[i]) * (i % 2 === 0 ? 2 : 1);
    if (digit > 9) digit -= 9;
    sum += digit;
  }
  return sum % 10 === 0;
}

/** The twelve digits (YYYYMMDDNNNC) of a typed number, or what is wrong with it. */
export function parsePersonalNumber(input: string, today = new Date()): { ok: true; value: string } | { ok: false; problem: PersonalNumberProblem } {
  const match = /^(\d{2})?(\d{6})([-+]?)(\d{4})$/.exec(input.trim().replace(/\s+/g, ''));
  if (!match) return { ok: false, problem: 'format' };
  const [, century, yymmdd, separator, last4] = match;
  let full: string;
  if (century) {
    if (separator === '+') return { ok: false, problem: 'format' };
    full = `${century}${yymmdd}${last4}`;
  } else {
    // The century is the latest one that does not put the birth date in the future; `+` means 100 more years.
    const yy = Number(yymmdd.slice(0, 2));
    const thisYear = today.getUTCFullYear();
    let year = Math.floor(thisYear / 100) * 100 + yy;
    if (year > thisYear) year -= 100;
    if (separator === '+') year -= 100;
    full = `${year}${yymmdd.slice(2)}${last4}`;
  }
  const month = Number(full.slice(4, 6));
  const rawDay = Number(full.slice(6, 8));
  const day = rawDay > 60 ? rawDay - 60 : rawDay;
  const year = Number(full.slice(0, 4));
  const date = new Date(Date.UTC(year, month - 1, day));
  if (month < 1 || month > 12 || day < 1 || date.getUTCDate() !== day || date.getUTCMonth() !== month - 1 || year < 1850) {
    return { ok: false, problem: 'date' };
  }
  if (!luhnValid(full.slice(2))) return { ok: false, problem: 'check_digit' };
  return { ok: true, value: full };
}

/** `19xxxxxx-xx34`: enough to recognise one's own number, not enough to learn someone's. */
export function maskPersonalNumber(twelveDigits: string): string {
  return `${twelveDigits.slice(0, 2)}xxxxxx-xx${twelveDigits.slice(10)}`;
}
