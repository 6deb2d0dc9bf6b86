import { factorFolder, type FactorDefinition } from '../definition.ts';
import { emailCodeFactor } from './index.ts';
import { emailCodeUi } from './ui.ts';

export const emailCodeDefinition: FactorDefinition = {
  id: 'email-code',
  folder: factorFolder('src/factors/email-code'),
  ui: emailCodeUi,
  create: (deps) => emailCodeFactor(deps),
};
