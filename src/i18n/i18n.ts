import fs from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../paths.ts';
import { supportedLocales, type Locale } from '../accounts/accounts.ts';

export const interactionsDir = path.join(projectRoot, 'interactions');

type Messages = { [key: string]: string | Messages };

const catalogues = new Map<Locale, Messages>(
  supportedLocales.map((locale) => [
    locale,
    JSON.parse(fs.readFileSync(path.join(interactionsDir, 'locales', `${locale}.json`), 'utf8')) as Messages,
  ]),
);

function lookup(messages: Messages, key: string): string | undefined {
  let node: string | Messages | undefined = messages;
  for (const part of key.split('.')) {
    if (!node || typeof node === 'string') return undefined;
    node = node[part];
  }
  return typeof node === 'string' ? node : undefined;
}

export type Translate = (key: string, vars?: Record<string, string | number>) => string;

export function translator(locale: Locale): Translate {
  const messages = catalogues.get(locale)!;
  const fallback = catalogues.get('en')!;
  return (key, vars = {}) => {
    const text = lookup(messages, key) ?? lookup(fallback, key) ?? key;
    return text.replace(/\{\{(\w+)\}\}/g, (_m, name: string) => String(vars[name] ?? ''));
  };
}

export function hasMessage(locale: Locale, key: string): boolean {
  return lookup(catalogues.get(locale)!, key) !== undefined;
}

export function isLocale(value: string): value is Locale {
  return (supportedLocales as readonly string[]).includes(value);
}

/** `ui_locales` (space-separated, in order of preference) wins; then Accept-Language; then the default. */
export function negotiateLocale(options: {
  uiLocales?: string;
  acceptsLanguages?: (languages: string[]) => string | false;
  fallback: Locale;
}): Locale {
  for (const tag of (options.uiLocales ?? '').split(/\s+/)) {
    const base = tag.toLowerCase().split('-')[0];
    if (base && isLocale(base)) return base;
  }
  const accepted = options.acceptsLanguages?.([...supportedLocales]);
  if (accepted && isLocale(accepted)) return accepted;
  return options.fallback;
}
