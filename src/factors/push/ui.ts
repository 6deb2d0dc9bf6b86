import { createRequire } from 'node:module';
import { codeEntryPage } from '../shared/pages/code-entry.ts';
import { pollPage } from '../shared/pages/poll.ts';
import type { PendingDisplay } from '../contract.ts';
import type { FactorScript, FactorUi } from '../ui-contract.ts';

/**
 * jsQR's browser build (window.jsQR): Nyckel Authenticator reads QR codes with it from camera frames
 * where the browser has no BarcodeDetector (iOS Safari, Firefox). Served at /assets/jsqr.js.
 */
function jsQrBundle(): FactorScript {
  return { name: 'jsqr.js', file: createRequire(import.meta.url).resolve('jsqr') };
}

/** Push approval: the page shows the number to pick in the app and waits (push.js). */
export const pushUi: FactorUi = {
  id: 'push',
  page: pollPage({ template: 'push/mfa-push', display: pushDisplay }),
  scripts: [{ name: 'push.js' }],
  failures: {},
  account: { label: 'account.add_push', via: { href: '/account/add/push' } },
};

/** A pending push shows the number to pick in the app (number matching) and the seconds left to answer. */
function pushDisplay(display: PendingDisplay): { number?: string; expiresIn?: number } {
  const { number, expiresAt } = display;
  return {
    number: typeof number === 'string' ? number : undefined,
    expiresIn: typeof expiresAt === 'number' ? Math.max(0, Math.round((expiresAt - Date.now()) / 1000)) : undefined,
  };
}

/** The offline QR code: the app scans it (with jsQR where the browser has no detector) and shows the code to type. */
export const appQrUi: FactorUi = { id: 'app-qr', page: codeEntryPage(), scripts: [jsQrBundle()], failures: { readsCode: true } };
