import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FactorDefinition } from '../../../src/factors/definition.ts';
import { codeEntryPage } from '../../../src/factors/shared/pages/code-entry.ts';
import { deskCodeModule } from './module.ts';

/** The test-only factor, registered the way an installed one is: this folder and one line in a registry list. */
export const deskCodeDefinition: FactorDefinition = {
  id: 'desk-code',
  folder: path.dirname(fileURLToPath(import.meta.url)),
  ui: {
    id: 'desk-code',
    page: codeEntryPage(),
    scripts: [{ name: 'desk-code.js' }],
    failures: { readsCode: true },
    account: { label: 'factors.desk-code.add', via: 'setup' },
  },
  create: () => deskCodeModule(),
};
