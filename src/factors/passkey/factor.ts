import { factorFolder, type FactorDefinition } from '../definition.ts';
import { passkeyFactor } from './index.ts';
import { passkeyUi } from './ui.ts';

export const passkeyDefinition: FactorDefinition = {
  id: 'passkey',
  folder: factorFolder('src/factors/passkey'),
  ui: passkeyUi,
  create: (deps) => passkeyFactor(deps),
};
