import { targetedStartPage } from '../shared/pages/targeted-start.ts';
import type { FactorUi } from '../ui-contract.ts';

/** A code texted to one of the user's numbers (or a number typed). */
export const smsUi: FactorUi = { id: 'sms', page: targetedStartPage(), failures: {} };
