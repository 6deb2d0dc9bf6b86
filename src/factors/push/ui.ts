import { codeEntryPage } from '../shared/pages/code-entry.ts';
import { pollPage } from '../shared/pages/poll.ts';
import type { PendingDisplay } from '../contract.ts';
import type { FactorUi } from '../ui-contract.ts';

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

/** The offline QR code: the app scans it and shows the code to type. */
export const appQrUi: FactorUi = { id: 'app-qr', page: codeEntryPage(), failures: { readsCode: true } };
