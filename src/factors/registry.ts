import type { FactorId } from '../clients/clients-file.ts';
import type { FactorModule } from './contract.ts';
import type { FactorScript, FactorUi } from './ui-contract.ts';
import { bankIdUi } from './bankid/ui.ts';
import { emailCodeUi } from './email-code/ui.ts';
import { emailLinkUi } from './email-link/ui.ts';
import { passkeyUi } from './passkey/ui.ts';
import { appQrUi, pushUi } from './push/ui.ts';
import { recoveryCodeUi } from './recovery-code/ui.ts';
import { smsUi } from './sms/ui.ts';
import { totpUi } from './totp/ui.ts';
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

/** The page side of every factor (src/factors/<id>/ui.ts), one line each. */
export const factorUis: ReadonlyMap<FactorId, FactorUi> = new Map(
  [emailLinkUi, emailCodeUi, smsUi, totpUi, passkeyUi, pushUi, appQrUi, recoveryCodeUi, bankIdUi].map((ui) => [ui.id, ui]),
);

/** The scripts the factors' pages load (/assets/<name>), each from its factor's folder. */
export function factorScripts(): FactorScript[] {
  return [...factorUis.values()].flatMap((ui) => ui.scripts ?? []);
}
