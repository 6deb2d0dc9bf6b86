import type { FactorId } from '../clients/clients-file.ts';
import type { FactorModule } from './contract.ts';
import type { FactorDependencies } from './deps.ts';
import { bankIdFactor } from './bankid/index.ts';
import { emailCodeFactor } from './email-code/index.ts';
import { emailLinkFactor } from './email-link/index.ts';
import { passkeyFactor } from './passkey/index.ts';
import { appQrFactor } from './push/app-qr.ts';
import { PushDevices } from './push/devices.ts';
import { pushFactor } from './push/index.ts';
import { smsFactor } from './sms/index.ts';
import { recoveryCodeFactor } from './recovery-code/index.ts';
import { totpFactor } from './totp/index.ts';

/** Every second-factor module, one line each. */
export function createFactorModules(deps: FactorDependencies): Map<FactorId, FactorModule> {
  // The phones of Nyckel Authenticator serve two modules: push approval and the offline QR code.
  const phones = new PushDevices(deps);
  const modules: FactorModule[] = [
    emailLinkFactor(deps),
    emailCodeFactor(deps),
    smsFactor(deps),
    totpFactor(deps),
    passkeyFactor(deps),
    pushFactor(deps, phones),
    appQrFactor(deps, phones),
    recoveryCodeFactor(deps),
    bankIdFactor(deps),
  ];
  return new Map(modules.map((module) => [module.id, module]));
}
