import { factorFolder, type FactorDefinition, type SharedParts } from '../definition.ts';
import type { FactorDependencies } from '../deps.ts';
import { appQrFactor } from './app-qr.ts';
import { PushDevices } from './devices.ts';
import { pushFactor } from './index.ts';
import { appQrUi, pushUi } from './ui.ts';

/** The phones of Nyckel Authenticator serve two factors: push approval and the offline QR code. */
const phones = (deps: FactorDependencies, shared: SharedParts) => shared.get('push-devices', () => new PushDevices(deps));

export const pushDefinition: FactorDefinition = {
  id: 'push',
  folder: factorFolder('src/factors/push'),
  ui: pushUi,
  create: (deps, shared) => pushFactor(deps, phones(deps, shared)),
};

export const appQrDefinition: FactorDefinition = {
  id: 'app-qr',
  folder: factorFolder('src/factors/push'),
  ui: appQrUi,
  create: (deps, shared) => appQrFactor(deps, phones(deps, shared)),
};
