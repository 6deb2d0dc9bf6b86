import fs from 'node:fs';
import path from 'node:path';
import nunjucks from 'nunjucks';
import type { Locale } from '../accounts/accounts.ts';
import { interactionsDir, registerFactorStrings, translator } from '../i18n/i18n.ts';

const genericDir = path.join(interactionsDir, 'templates');
const factorTemplateName = /^([a-z0-9-]+)\/([a-z0-9-]+\.njk)$/;

/**
 * Finds a template: `<factor id>/<name>` in that factor's templates folder, any other name in
 * interactions/templates, and a bare name found nowhere there in the factor folders (pages that
 * name a factor's template without its folder).
 */
class TemplateLoader implements nunjucks.ILoader {
  private readonly factorDirs: string[];

  /** `factorFolders`: each factor's folder by id (from the registry); its templates are in templates/. */
  constructor(private readonly factorFolders: ReadonlyMap<string, string>) {
    this.factorDirs = [...new Set(factorFolders.values())].map((folder) => path.join(folder, 'templates')).filter((dir) => fs.existsSync(dir));
  }

  getSource(name: string): nunjucks.LoaderSource {
    const file = this.resolve(name);
    if (!file) throw new Error(`template not found: ${name}`);
    return { src: fs.readFileSync(file, 'utf8'), path: file, noCache: false };
  }

  private resolve(name: string): string | undefined {
    const own = factorTemplateName.exec(name);
    const candidates = [
      ...(own && this.factorFolders.has(own[1]) ? [path.join(this.factorFolders.get(own[1])!, 'templates', own[2])] : []),
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

  /** `service`: the service's name (NYCKEL_BRAND_NAME), `{{service}}` in every string unless a page names another. */
  constructor(
    factorFolders: ReadonlyMap<string, string>,
    private readonly service = 'Nyckel',
  ) {
    // The factors' strings join the catalogue with their templates (a test build's factors too).
    registerFactorStrings([...factorFolders.values()]);
    this.env = new nunjucks.Environment(new TemplateLoader(factorFolders), {
      autoescape: true,
      throwOnUndefined: false,
    });
  }

  render(template: string, locale: Locale, context: Record<string, unknown> = {}): string {
    const t = translator(locale);
    return this.env.render(`${template}.njk`, { ...context, locale, t: (key: string, vars = {}) => t(key, { service: this.service, ...vars }) });
  }
}
