import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import nunjucks from 'nunjucks';
import type { Locale } from '../accounts/accounts.ts';
import { interactionsDir, translator } from '../i18n/i18n.ts';

/** Where each factor keeps its own templates: src/factors/<id>/templates/. */
export const factorsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../factors');

const genericDir = path.join(interactionsDir, 'templates');
const factorTemplateName = /^([a-z0-9-]+)\/([a-z0-9-]+\.njk)$/;

/**
 * Finds a template: `<factor id>/<name>` in that factor's templates folder, any other name in
 * interactions/templates, and a bare name found nowhere there in the factor folders (pages that
 * name a factor's template without its folder).
 */
class TemplateLoader implements nunjucks.ILoader {
  private readonly factorDirs = fs
    .readdirSync(factorsDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && fs.existsSync(path.join(factorsDir, entry.name, 'templates')))
    .map((entry) => path.join(factorsDir, entry.name, 'templates'));

  getSource(name: string): nunjucks.LoaderSource {
    const file = this.resolve(name);
    if (!file) throw new Error(`template not found: ${name}`);
    return { src: fs.readFileSync(file, 'utf8'), path: file, noCache: false };
  }

  private resolve(name: string): string | undefined {
    const own = factorTemplateName.exec(name);
    const candidates = [
      ...(own ? [path.join(factorsDir, own[1], 'templates', own[2])] : []),
      path.join(genericDir, name),
      ...this.factorDirs.map((dir) => path.join(dir, name)),
    ];
    // Names come from the code, never from a request; still, nothing outside these folders.
    if (name.includes('..')) return undefined;
    return candidates.find((file) => fs.existsSync(file));
  }
}

/** Server-rendered hosted pages: nunjucks with autoescaping, and `t` bound to the page's locale. */
export class Views {
  private readonly env: nunjucks.Environment;

  constructor() {
    this.env = new nunjucks.Environment(new TemplateLoader(), {
      autoescape: true,
      throwOnUndefined: false,
    });
  }

  render(template: string, locale: Locale, context: Record<string, unknown> = {}): string {
    return this.env.render(`${template}.njk`, { ...context, locale, t: translator(locale) });
  }
}
