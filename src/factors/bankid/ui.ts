import { pollPage } from '../shared/pages/poll.ts';
import type { FactorUi } from '../ui-contract.ts';

/** BankID: an animated QR code or the app on this device; the page polls the order (bankid.js). */
export const bankIdUi: FactorUi = {
  id: 'bankid',
  page: pollPage({ template: 'bankid/mfa-bankid' }),
  scripts: [{ name: 'bankid.js' }],
  // BankID's mark is BankID's trademark: Nyckel shows it only when the installation supplies the file.
  images: (settings) => (settings.bankid?.logoFile ? [{ name: 'bankid-logo.svg', file: settings.bankid.logoFile, setting: 'NYCKEL_BANKID_LOGO_FILE' }] : []),
  failures: {},
  account: { label: 'account.add_bankid', via: { href: '/account/add/bankid' }, once: true, available: (settings) => Boolean(settings.bankid) },
};
