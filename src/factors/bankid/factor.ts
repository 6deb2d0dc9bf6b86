import { factorFolder, type FactorDefinition } from '../definition.ts';
import { bankIdFactor } from './index.ts';
import { bankIdUi } from './ui.ts';

export const bankIdDefinition: FactorDefinition = {
  id: 'bankid',
  folder: factorFolder('src/factors/bankid'),
  ui: bankIdUi,
  create: (deps) => bankIdFactor(deps),
};
