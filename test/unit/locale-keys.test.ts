import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { installedFactors } from '../../src/factors/registry.ts';
import { hasMessage, interactionsDir } from '../../src/i18n/i18n.ts';

const root = path.resolve(interactionsDir, '..');
const locales = ['sv', 'da', 'en'] as const;

function files(dir: string, ending: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return files(full, ending);
    return entry.name.endsWith(ending) ? [full] : [];
  });
}

/** The sign-in pages: the generic templates but the account pages', and every factor's own. */
const templates = [
  ...files(path.join(interactionsDir, 'templates'), '.njk').filter((file) => !path.basename(file).startsWith('account')),
  ...files(path.join(root, 'src/factors'), '.njk'),
];
/** The sign-in code: the routes and the factors' page side. */
const code = [
  ...files(path.join(root, 'src/web/sign-in'), '.ts'),
  ...files(path.join(root, 'src/factors/shared/pages'), '.ts'),
  ...files(path.join(root, 'src/factors'), 'ui.ts'),
];

/** Literal keys passed to `t(…)` (a whole key: letters, digits, dots, dashes and underscores). */
function literalKeys(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  return [...text.matchAll(/\bt\(\s*'([a-z_][a-z0-9_.-]*\.[a-z0-9_.-]*[a-z0-9_])'/g)].map((m) => m[1]);
}

describe('every translation key the sign-in pages use exists in sv, da and en', () => {
  const used = new Map<string, string>();
  for (const file of [...templates, ...code]) for (const key of literalKeys(file)) used.set(key, path.relative(root, file));

  test('the scan finds the pages and their keys', () => {
    expect(templates.length).toBeGreaterThan(10);
    expect(used.size).toBeGreaterThan(50);
  });

  test.each(locales)('literal keys in %s', (locale) => {
    const missing = [...used].filter(([key]) => !hasMessage(locale, key)).map(([key, file]) => `${key} (${file})`);
    expect(missing).toEqual([]);
  });

  test.each(locales)("each factor's name and hint (the method list) in %s", (locale) => {
    const missing = installedFactors
      .map((factor) => factor.id)
      .flatMap((id) => [`factors.${id}.name`, `factors.${id}.hint`])
      .filter((key) => !hasMessage(locale, key));
    expect(missing).toEqual([]);
  });
});

/** The account pages: their templates, their routes, and each factor's "Add a method" button. */
const accountTemplates = files(path.join(interactionsDir, 'templates'), '.njk').filter((file) => path.basename(file).startsWith('account'));
const accountCode = files(path.join(root, 'src/account'), '.ts');

describe('every translation key the account pages use exists in sv, da and en', () => {
  const used = new Map<string, string>();
  for (const file of [...accountTemplates, ...accountCode]) for (const key of literalKeys(file)) used.set(key, path.relative(root, file));
  for (const factor of installedFactors) if (factor.ui.account) used.set(factor.ui.account.label, `src/factors/${factor.id}/ui.ts`);

  test('the scan finds the pages, their keys and the factors added there', () => {
    expect(accountTemplates.length).toBeGreaterThan(3);
    expect(used.size).toBeGreaterThan(40);
    expect(installedFactors.filter((factor) => factor.ui.account).length).toBeGreaterThanOrEqual(4);
  });

  test.each(locales)('literal keys in %s', (locale) => {
    const missing = [...used].filter(([key]) => !hasMessage(locale, key)).map(([key, file]) => `${key} (${file})`);
    expect(missing).toEqual([]);
  });
});
