import { factorFolder, type FactorDefinition } from '../definition.ts';
import { emailLinkFactor } from './index.ts';
import { emailLinkUi } from './ui.ts';

export const emailLinkDefinition: FactorDefinition = {
  id: 'email-link',
  folder: factorFolder('src/factors/email-link'),
  ui: emailLinkUi,
  create: (deps) => emailLinkFactor(deps),
};
