import fs from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../paths.ts';
import { supportedLocales, type Locale } from './locales.ts';

export const interactionsDir = path.join(projectRoot, 'interactions');

export type Messages = { [key: string]: string | Messages };

/** Each factor brings its own strings (`factors.<id>.*`, `factor_errors.<id>_*`) in its folder's locales/. */
const installedFactorsDir = path.join(projectRoot, 'src', 'factors');

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
      merge(into[key], value, `${at}${key}.`);
    }
  }
}

/** The hosted pages' strings: locales/<locale>.json, and the account pages' in locales/account/<locale>.json. */
function pageMessages(locale: Locale): Messages {
  const messages = readMessages(path.join(interactionsDir, 'locales', `${locale}.json`));
  merge(messages, readMessages(path.join(interactionsDir, 'locales', 'account', `${locale}.json`)), '');
  return messages;
}

const catalogues = new Map<Locale, Messages>(supportedLocales.map((locale) => [locale, pageMessages(locale)]));
const mergedFolders = new Set<string>();

/**
 * Merges the strings of factor folders (their locales/<locale>.json) into the catalogues under the
 * same keys; a folder is merged once however often it is named.
 */
export function registerFactorStrings(folders: readonly string[]): void {
  for (const folder of folders.map((f) => path.resolve(f))) {
    if (mergedFolders.has(folder)) continue;
    mergedFolders.add(folder);
    for (const locale of supportedLocales) {
      const file = path.join(folder, 'locales', `${locale}.json`);
      if (fs.existsSync(file)) merge(catalogues.get(locale)!, readMessages(file), '');
    }
  }
}

// The installed factors' strings are there from the start (pages and mails rendered before any Views).
registerFactorStrings(
  fs
    .readdirSync(installedFactorsDir)
    .sort()
    .map((folder) => path.join(installedFactorsDir, folder))
    .filter((folder) => fs.existsSync(path.join(folder, 'locales'))),
);

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
export function negotiateLocale(options: { uiLocales?: string; acceptsLanguages?: (languages: string[]) => string | false; fallback: Locale }): Locale {
  for (const tag of (options.uiLocales ?? '').split(/\s+/)) {
    const base = tag.toLowerCase().split('-')[0];
    if (base && isLocale(base)) return base;
  }
  const accepted = options.acceptsLanguages?.([...supportedLocales]);
  if (accepted && isLocale(accepted)) return accepted;
  return options.fallback;
}
