import { factorFolder, type FactorDefinition } from '../definition.ts';
import { recoveryCodeFactor } from './index.ts';
import { recoveryCodeUi } from './ui.ts';

export const recoveryCodeDefinition: FactorDefinition = {
  id: 'recovery-code',
  folder: factorFolder('src/factors/recovery-code'),
  ui: recoveryCodeUi,
  create: (deps) => recoveryCodeFactor(deps),
};
