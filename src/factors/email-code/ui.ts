import { targetedStartPage } from '../shared/pages/targeted-start.ts';
import type { FactorUi } from '../ui-contract.ts';

/** A code mailed to one of the user's addresses. */
export const emailCodeUi: FactorUi = { id: 'email-code', page: targetedStartPage(), failures: {} };
