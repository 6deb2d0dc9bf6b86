import path from 'node:path';
import nunjucks from 'nunjucks';
import type { Locale } from '../accounts/accounts.ts';
import { interactionsDir, translator } from '../i18n/i18n.ts';

/** Server-rendered hosted pages: nunjucks with autoescaping, and `t` bound to the page's locale. */
export class Views {
  private readonly env: nunjucks.Environment;

  constructor() {
    this.env = new nunjucks.Environment(new nunjucks.FileSystemLoader(path.join(interactionsDir, 'templates')), {
      autoescape: true,
      throwOnUndefined: false,
    });
  }

  render(template: string, locale: Locale, context: Record<string, unknown> = {}): string {
    return this.env.render(`${template}.njk`, { ...context, locale, t: translator(locale) });
  }
}
