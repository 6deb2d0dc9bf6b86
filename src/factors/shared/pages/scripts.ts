import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FactorScript } from '../../ui-contract.ts';

/** A script in the `scripts/` folder next to the ui file at `uiUrl` (pass `import.meta.url`). */
export function ownScript(uiUrl: string, name: string): FactorScript {
  return { name, file: path.join(path.dirname(fileURLToPath(uiUrl)), 'scripts', name) };
}
