import crypto from 'node:crypto';

/**
 * The animated QR code of BankID's RP API v6: `bankid.<qrStartToken>.<seconds>.<authCode>`, where
 * authCode is HMAC-SHA256 keyed with qrStartSecret over the decimal seconds since the order was made.
 * Computed on the server: qrStartSecret never reaches the browser.
 */
export function qrPayload(qrStartToken: string, qrStartSecret: string, seconds: number): string {
  const time = String(Math.max(0, Math.floor(seconds)));
  const authCode = crypto.createHmac('sha256', qrStartSecret).update(time).digest('hex');
  return `bankid.${qrStartToken}.${time}.${authCode}`;
}

/** The link that starts the BankID app on this device; `redirect=null` leaves the return to the app. */
export function autostartLink(autoStartToken: string): string {
  return `bankid:///?autostarttoken=${encodeURIComponent(autoStartToken)}&redirect=null`;
}
