/**
 * Phones and tablets, by their User-Agent: there BankID is on this device, so "BankID on this device"
 * is the default and the app is opened by its universal link. (An iPad that reports itself as a Mac
 * is recognised by bankid.js, which sees the touch screen.)
 */
const MOBILE = /Android|iPhone|iPad|iPod|Mobile|Windows Phone|Silk\//i;

export function isMobileDevice(userAgent: string | undefined): boolean {
  return Boolean(userAgent && MOBILE.test(userAgent));
}
