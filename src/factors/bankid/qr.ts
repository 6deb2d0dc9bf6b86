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

/**
 * The link that starts the BankID app on this device, as BankID's guidelines ask: on a phone or tablet
 * the universal link https://app.bankid.com/ (the operating system opens the app, whichever browser
 * the page is in), on a computer the bankid:/// scheme (BankID Security Application). `redirect=null`
 * leaves the return to the app: the person comes back to the browser the page is in (Android) or
 * switches back by hand (iOS), and the page, still polling, goes on.
 */
export function autostartLink(autoStartToken: string, mobile: boolean): string {
  const query = `?autostarttoken=${encodeURIComponent(autoStartToken)}&redirect=null`;
  return mobile ? `https://app.bankid.com/${query}` : `bankid:///${query}`;
}
