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

/** `xxxx-xxxx72` as in Aiai: only the last two digits. */
export function maskPhone(e164: string): string {
  return `xxxx-xxxx${e164.slice(-2)}`;
}
