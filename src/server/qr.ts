import QRCode from 'qrcode';

/** A QR code as a `data:image/png` URL (the CSP allows `img-src data:`), for an `otpauth://` URI. */
export function qrDataUrl(text: string): Promise<string> {
  return QRCode.toDataURL(text, { errorCorrectionLevel: 'M', margin: 2, width: 240 });
}
