import path from 'node:path';
import type { FactorId } from '../clients/clients-file.ts';
import type { FactorModule } from './contract.ts';
import { SharedParts, type FactorDefinition } from './definition.ts';
import type { FactorDependencies } from './deps.ts';
import type { FactorImage, FactorUi } from './ui-contract.ts';
import type { Settings } from '../config/settings.ts';
import { bankIdDefinition } from './bankid/factor.ts';
import { emailCodeDefinition } from './email-code/factor.ts';
import { emailLinkDefinition } from './email-link/factor.ts';
import { passkeyDefinition } from './passkey/factor.ts';
import { appQrDefinition, pushDefinition } from './push/factor.ts';
import { recoveryCodeDefinition } from './recovery-code/factor.ts';
import { smsDefinition } from './sms/factor.ts';
import { totpDefinition } from './totp/factor.ts';

/** Every installed second factor, one line each; the order is the default order methods are offered in. */
export const installedFactors: readonly FactorDefinition[] = [
  emailLinkDefinition,
  emailCodeDefinition,
  smsDefinition,
  totpDefinition,
  pushDefinition,
  appQrDefinition,
  passkeyDefinition,
  recoveryCodeDefinition,
  bankIdDefinition,
];

/** A script a factor's pages load from /assets/<name>, and the file it is read from. */
export interface ResolvedScript {
  name: string;
  file: string;
}

/**
 * The factors of one running Nyckel (the installed ones, or a test build's list): everything the
 * rest of the program learns about factors — ids, modules, page sides, scripts, folders — comes from here.
 */
export class Factors {
  readonly ids: readonly FactorId[];

  constructor(readonly definitions: readonly FactorDefinition[] = installedFactors) {
    const ids = definitions.map((definition) => definition.id);
    const twice = ids.find((id, index) => ids.indexOf(id) !== index);
    if (twice) throw new Error(`factor ${twice} is registered twice`);
    this.ids = ids;
  }

  /** Builds every module once; parts that several factors share are built once too. */
  modules(deps: FactorDependencies): Map<FactorId, FactorModule> {
    const shared = new SharedParts();
    return new Map(this.definitions.map((definition) => [definition.id, definition.create(deps, shared)]));
  }

  get uis(): ReadonlyMap<FactorId, FactorUi> {
    return new Map(this.definitions.map((definition) => [definition.id, definition.ui]));
  }

  /** Each factor's scripts; a script without its own file is the factor folder's scripts/<name>. */
  scripts(): ResolvedScript[] {
    return this.definitions.flatMap((definition) =>
      (definition.ui.scripts ?? []).map((script) => ({ name: script.name, file: script.file ?? path.join(definition.folder, 'scripts', script.name) })),
    );
  }

  /** The SVG images the installation supplies for the factors' pages (e.g. BankID's mark). */
  images(settings: Settings): FactorImage[] {
    return this.definitions.flatMap((definition) => [...(definition.ui.images?.(settings) ?? [])]);
  }

  /** Where each factor keeps its templates and locale strings (two factors may share one folder). */
  folders(): ReadonlyMap<FactorId, string> {
    return new Map(this.definitions.map((definition) => [definition.id, definition.folder]));
  }

  /** The ids in `ids` that no registered factor has (a clients file or setting naming a method not installed). */
  unknown(ids: readonly string[]): string[] {
    return [...new Set(ids.filter((id) => !this.ids.includes(id)))];
  }
}
