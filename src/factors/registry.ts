import type { FactorId } from '../clients/clients-file.ts';
import type { FactorModule } from './contract.ts';
import type { FactorDependencies } from './deps.ts';
import { emailCodeFactor } from './email-code/index.ts';
import { emailLinkFactor } from './email-link/index.ts';
import { smsFactor } from './sms/index.ts';
import { recoveryCodeFactor } from './recovery-code/index.ts';
import { totpFactor } from './totp/index.ts';

/** Every second-factor module, one line each. */
export function createFactorModules(deps: FactorDependencies): Map<FactorId, FactorModule> {
  const modules: FactorModule[] = [
    emailLinkFactor(deps),
    emailCodeFactor(deps),
    smsFactor(deps),
    totpFactor(deps),
    recoveryCodeFactor(deps),
  ];
  return new Map(modules.map((module) => [module.id, module]));
}
