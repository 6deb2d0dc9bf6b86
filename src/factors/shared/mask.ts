import { parsePhoneNumberFromString } from 'libphonenumber-js';

/** `Ma…ge@Sc…se` as in IDEP.WEB: enough for the owner to recognise, too little to learn it. */
export function maskEmail(address: string): string {
  const at = address.lastIndexOf('@');
  if (at < 0) return maskPart(address);
  return `${maskPart(address.slice(0, at))}@${maskPart(address.slice(at + 1))}`;
}

function maskPart(part: string): string {
  const chars = [...part];
  if (chars.length <= 2) return `${chars[0] ?? ''}…`;
  if (chars.length <= 4) return `${chars[0]}…${chars.at(-1)}`;
  return `${chars.slice(0, 2).join('')}…${chars.slice(-2).join('')}`;
}

/**
 * Only the last two digits, grouped as the number's country writes it: a Swedish number as Aiai
 * shows it (`xxxx-xxxx72`); a Danish one in pairs (`+45 xx xx xx 78`); any other in the
 * international format libphonenumber-js gives it (`+47 xx xx xx 67`).
 */
export function maskPhone(e164: string): string {
  const phone = parsePhoneNumberFromString(e164);
  if (!phone || phone.countryCallingCode === '46') return `xxxx-xxxx${e164.slice(-2)}`;
  const grouped = formatPhone(e164);
  const prefix = `+${phone.countryCallingCode} `;
  if (!grouped.startsWith(prefix)) return `xxxx-xxxx${e164.slice(-2)}`;
  return prefix + maskAllButLastTwoDigits(grouped.slice(prefix.length));
}

function maskAllButLastTwoDigits(national: string): string {
  let keep = 2;
  return [...national]
    .reverse()
    .map((char) => (/\d/.test(char) ? (keep-- > 0 ? char : 'x') : char))
    .reverse()
    .join('');
}

/** A number as its owner writes it, with the country code: `+46 70 123 45 72`, `+45 20 12 34 78`. */
export function formatPhone(e164: string): string {
  const phone = parsePhoneNumberFromString(e164);
  if (!phone) return e164;
  // Danish numbers are eight digits in pairs, also the ones the metadata does not know to format.
  if (phone.countryCallingCode === '45' && phone.nationalNumber.length === 8) return `+45 ${phone.nationalNumber.match(/\d\d/g)!.join(' ')}`;
  return phone.formatInternational();
}
