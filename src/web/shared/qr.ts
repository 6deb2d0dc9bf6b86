// Loaded at the first QR code drawn (an app's or a device's enrolment, BankID), not at start.
const qrcode = () => import('qrcode').then((module) => module.default);

/** A QR code as a `data:image/png` URL (the CSP allows `img-src data:`), for an `otpauth://` URI. */
export async function qrDataUrl(text: string): Promise<string> {
  return (await qrcode()).toDataURL(text, { errorCorrectionLevel: 'M', margin: 2, width: 240 });
}

/** A QR code as a `data:image/svg+xml` URL: cheaper than a PNG for a code redrawn every second (BankID's). */
export async function qrSvgDataUrl(text: string): Promise<string> {
  const svg = await (await qrcode()).toString(text, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
  return `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}`;
}
