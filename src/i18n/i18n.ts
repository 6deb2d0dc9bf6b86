import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { supportedLocales, type Locale } from '../accounts/accounts.ts';

export const interactionsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../interactions');

export type Messages = { [key: string]: string | Messages };

/** Each factor brings its own strings (`factors.<id>.*`, `factor_errors.<id>_*`) in src/factors/<folder>/locales/. */
const factorsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../factors');

const readMessages = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8')) as Messages;

/** Adds `extra` into `into`, key by key; a string defined twice is a mistake in the files. */
function merge(into: Messages, extra: Messages, at: string) {
  for (const [key, value] of Object.entries(extra)) {
    const existing = into[key];
    if (typeof value === 'string' || typeof existing === 'string') {
      if (existing !== undefined) throw new Error(`locale key ${at}${key} defined twice`);
      into[key] = value;
    } else {
      into[key] = existing ?? {};
      merge(into[key] as Messages, value, `${at}${key}.`);
    }
  }
}

/** interactions/locales/<locale>.json with every factor's fragment merged in under the same keys. */
function loadCatalogue(locale: Locale): Messages {
  const messages = readMessages(path.join(interactionsDir, 'locales', `${locale}.json`));
  for (const folder of fs.readdirSync(factorsDir).sort()) {
    const file = path.join(factorsDir, folder, 'locales', `${locale}.json`);
    if (fs.existsSync(file)) merge(messages, readMessages(file), '');
  }
  return messages;
}

const catalogues = new Map<Locale, Messages>(supportedLocales.map((locale) => [locale, loadCatalogue(locale)]));

/** A locale's whole message catalogue, factors' strings included (for tests of the keys). */
export function catalogue(locale: Locale): Readonly<Messages> {
  return catalogues.get(locale)!;
}

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
