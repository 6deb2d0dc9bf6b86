import { codeEntryPage } from '../shared/pages/code-entry.ts';
import { pollPage } from '../shared/pages/poll.ts';
import { ownScript } from '../shared/pages/scripts.ts';
import type { FactorUi } from '../ui-contract.ts';

/** Push approval: the page shows the number to pick in the app and waits (push.js). */
export const pushUi: FactorUi = { id: 'push', page: pollPage({ template: 'push/mfa-push' }), scripts: [ownScript(import.meta.url, 'push.js')], failures: {} };

/** The offline QR code: the app scans it and shows the code to type. */
export const appQrUi: FactorUi = { id: 'app-qr', page: codeEntryPage(), failures: { readsCode: true } };
