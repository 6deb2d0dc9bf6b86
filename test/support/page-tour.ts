import fs from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { catalogue, type Messages } from '../../src/i18n/i18n.ts';
import { projectRoot } from '../../src/paths.ts';
import { seriousAxeViolations, type AxeViolation } from './chromium.ts';

export type Language = 'sv' | 'da' | 'en';
export const LANGUAGES: readonly Language[] = ['sv', 'da', 'en'];
export const VIEWPORTS = [
  { name: 'desktop', width: 1280, height: 800 },
  { name: 'phone', width: 390, height: 844 },
] as const;

/** Where the screenshots go (kept by CI as artefacts); NYCKEL_SCREENSHOTS_DIR moves them. */
export const screenshotsDir = process.env.NYCKEL_SCREENSHOTS_DIR ?? path.join(projectRoot, 'test-artifacts', 'screenshots');

function flatten(messages: Readonly<Messages>, prefix = '', into = new Map<string, string>()): Map<string, string> {
  for (const [key, value] of Object.entries(messages)) {
    if (typeof value === 'string') into.set(prefix + key, value);
    else flatten(value, `${prefix}${key}.`, into);
  }
  return into;
}

/**
 * The English phrases that must not show on a page in `language`: the pieces between the {{placeholders}}
 * of every English message whose translation differs (or is missing, so the English fallback would show).
 * Pieces that say too little to be English by themselves (one short word, a number, "OK") are left out.
 */
export function englishPhrases(language: Exclude<Language, 'en'>): Map<string, string> {
  const english = flatten(catalogue('en'));
  const translated = flatten(catalogue(language));
  const phrases = new Map<string, string>();
  for (const [key, text] of english) {
    // A name (Nyckel, BankID) may be the same in every language; a sentence may not.
    if (translated.get(key) === text && wordCount(text) < 3) continue;
    for (const piece of text.split(/\{\{\w+\}\}/)) {
      const phrase = piece.trim().replace(/^[\s.,:;()…"'-]+|[\s.,:;()…"'-]+$/g, '');
      const words = phrase.split(/\s+/).filter((word) => /\p{L}{2}/u.test(word));
      if (words.length >= 2 || (words.length === 1 && phrase.length >= 5)) phrases.set(phrase, key);
    }
  }
  // A short piece the other language also uses as it is (a name, a borrowed word) is not English there.
  for (const [, text] of translated) if (wordCount(text) < 3) phrases.delete(text.trim());
  return phrases;
}

const wordCount = (text: string) => text.trim().split(/\s+/).length;

/** Words that appear in English sentences and in no Swedish or Danish one (catches text outside the catalogues). */
const ENGLISH_WORDS = /\b(the|your|you|please|with|this|cannot|could not|was|been|which|should)\b/i;

const phraseCache = new Map<Language, Map<string, string>>();

/** English in visible `text` of a page in `language`: catalogue phrases (with their keys) and telltale words. */
export function untranslatedIn(text: string, language: Language): string[] {
  if (language === 'en') return [];
  if (!phraseCache.has(language)) phraseCache.set(language, englishPhrases(language));
  const found: string[] = [];
  for (const [phrase, key] of phraseCache.get(language)!) {
    const escaped = phrase.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    if (new RegExp(`(^|[^\\p{L}])${escaped}($|[^\\p{L}])`, 'u').test(text)) found.push(`"${phrase}" (${key})`);
  }
  for (const line of text.split('\n')) {
    const word = ENGLISH_WORDS.exec(line)?.[0];
    if (word) found.push(`"${word}" in: ${line.trim()}`);
  }
  return found;
}

/**
 * The page's visible text as a person meets it: text nodes that are rendered, attribute texts a screen
 * reader speaks or a field shows, and the title. Text marked as another language (lang="en" on the
 * language switcher's "English", a technical detail quoted for support) is left out: it is meant so.
 */
export function visibleText(page: Page): Promise<string> {
  return page.evaluate(() => {
    const pageLang = document.documentElement.lang;
    const inPageLanguage = (element: Element) => (element.closest('[lang]')?.getAttribute('lang') ?? pageLang) === pageLang;
    const lines: string[] = [document.title];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const parent = node.parentElement;
      if (!parent || !node.textContent?.trim() || !inPageLanguage(parent)) continue;
      if (parent.closest('script, style, template, noscript') || !parent.checkVisibility()) continue;
      lines.push(node.textContent.trim());
    }
    for (const element of Array.from(
      document.querySelectorAll('[aria-label], [title], [placeholder], [alt], input[type=submit][value], input[type=button][value]'),
    )) {
      if (!inPageLanguage(element)) continue;
      for (const name of ['aria-label', 'title', 'placeholder', 'alt', 'value']) {
        const value = element.getAttribute(name);
        if (value && (name !== 'value' || element.matches('input[type=submit], input[type=button]'))) lines.push(value);
      }
    }
    return lines.join('\n');
  });
}

export interface PageReport {
  name: string;
  language: Language;
  htmlLang: string | null;
  overflow: { viewport: string; scrollWidth: number; innerWidth: number }[];
  axe: AxeViolation[];
  untranslated: string[];
}

/**
 * Checks the page in its current state: a full-page screenshot at each viewport (desktop, phone), no
 * horizontal overflow at either, axe (serious and critical) at the phone size, `<html lang>` and no
 * English in a Swedish or Danish page. Returns what it found; the test asserts on it.
 */
export async function inspectPage(page: Page, language: Language, name: string): Promise<PageReport> {
  const report: PageReport = { name, language, htmlLang: await page.locator('html').getAttribute('lang'), overflow: [], axe: [], untranslated: [] };
  const original = page.viewportSize();
  for (const viewport of VIEWPORTS) {
    await page.setViewportSize({ width: viewport.width, height: viewport.height });
    const widths = await page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth }));
    if (widths.scrollWidth > widths.innerWidth) report.overflow.push({ viewport: viewport.name, ...widths });
    const file = path.join(screenshotsDir, language, `${viewport.width}x${viewport.height}`, `${name}.png`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    await page.screenshot({ path: file, fullPage: true, animations: 'disabled', caret: 'hide' });
  }
  report.axe = await seriousAxeViolations(page);
  report.untranslated = untranslatedIn(await visibleText(page), language);
  if (original) await page.setViewportSize(original);
  return report;
}

/** The reports of a tour with a problem, in a form a failing expectation prints readably. */
export function problems(reports: PageReport[]): string[] {
  return reports.flatMap((r) => [
    ...(r.htmlLang === r.language ? [] : [`${r.language}/${r.name}: <html lang="${r.htmlLang}">`]),
    ...r.overflow.map((o) => `${r.language}/${r.name}: overflows at ${o.viewport} (${o.scrollWidth} > ${o.innerWidth})`),
    ...r.axe.map((v) => `${r.language}/${r.name}: axe ${v.id} (${v.help}) at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`),
    ...r.untranslated.map((u) => `${r.language}/${r.name}: English ${u}`),
  ]);
}
