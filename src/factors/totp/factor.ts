import { factorFolder, type FactorDefinition } from '../definition.ts';
import { totpFactor } from './index.ts';
import { totpUi } from './ui.ts';

export const totpDefinition: FactorDefinition = {
  id: 'totp',
  folder: factorFolder('src/factors/totp'),
  ui: totpUi,
  create: (deps) => totpFactor(deps),
};
