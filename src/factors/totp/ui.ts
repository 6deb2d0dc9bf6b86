import { codeEntryPage } from '../shared/pages/code-entry.ts';
import type { FactorUi } from '../ui-contract.ts';

/** An authenticator app: the code page at sign-in, the setup page (QR code) at enrolment. */
export const totpUi: FactorUi = {
  id: 'totp',
  page: codeEntryPage(),
  failures: { readsCode: true },
  account: { label: 'account.add_totp', via: 'setup' },
};
