import { codeEntryPage } from '../shared/pages/code-entry.ts';
import type { FactorUi } from '../ui-contract.ts';

/** A printed list: codes with letters and a dash. The page of new codes saves them (recovery.js). */
export const recoveryCodeUi: FactorUi = {
  id: 'recovery-code',
  page: codeEntryPage({ alphanumeric: true }),
  scripts: [{ name: 'recovery.js' }],
  failures: { readsCode: true },
};
