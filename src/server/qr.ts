/** Moved to src/web/shared/qr.ts; kept for importers outside the sign-in pages. */
export { qrDataUrl, qrSvgDataUrl } from '../web/shared/qr.ts';
