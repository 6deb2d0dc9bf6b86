import path from 'node:path';
import type { FactorId } from '../clients/clients-file.ts';
import { projectRoot } from '../paths.ts';
import type { FactorModule } from './contract.ts';
import type { FactorDependencies } from './deps.ts';
import type { FactorUi } from './ui-contract.ts';

/**
 * A factor as its folder gives it to the registry: how its module is built, its page side, and the
 * folder its templates/, locales/ and scripts/ are read from. One of these is one line of registry.ts.
 */
export interface FactorDefinition {
  readonly id: FactorId;
  /** Absolute path of the factor's folder (see `factorFolder`). */
  readonly folder: string;
  readonly ui: FactorUi;
  create(deps: FactorDependencies, shared: SharedParts): FactorModule;
}

/** A factor folder named from the project's root (`src/factors/totp`): the same in the sources and in the built server. */
export function factorFolder(fromRoot: string): string {
  return path.join(projectRoot, fromRoot);
}

/** Parts that several factors of one installation share (the phones of Nyckel Authenticator serve two), built once. */
export class SharedParts {
  private readonly parts = new Map<string, unknown>();

  get<T>(key: string, make: () => T): T {
    if (!this.parts.has(key)) this.parts.set(key, make());
    return this.parts.get(key) as T;
  }
}
