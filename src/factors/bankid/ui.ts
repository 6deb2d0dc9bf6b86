import { pollPage } from '../shared/pages/poll.ts';
import type { FactorUi } from '../ui-contract.ts';

/** BankID: an animated QR code or the app on this device; the page polls the order (bankid.js). */
export const bankIdUi: FactorUi = {
  id: 'bankid',
  page: pollPage({ template: 'bankid/mfa-bankid' }),
  scripts: [{ name: 'bankid.js' }],
  failures: {},
  account: { label: 'account.add_bankid', via: { href: '/account/add/bankid' }, once: true, available: (settings) => Boolean(settings.bankid) },
};
