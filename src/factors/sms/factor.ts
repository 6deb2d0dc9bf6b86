import { factorFolder, type FactorDefinition } from '../definition.ts';
import { smsFactor } from './index.ts';
import { smsUi } from './ui.ts';

export const smsDefinition: FactorDefinition = {
  id: 'sms',
  folder: factorFolder('src/factors/sms'),
  ui: smsUi,
  create: (deps) => smsFactor(deps),
};
