import fs from 'node:fs';

/** Larger than any mark needs; a file this big is more likely a mistake. */
const MAX_BYTES = 256 * 1024;

/** What an SVG image must not carry: scripts, event handlers, foreign content, entities, outside references. */
const FORBIDDEN: ReadonlyArray<[RegExp, string]> = [
  [/<!DOCTYPE|<!ENTITY/i, 'a DOCTYPE or entity declarations'],
  [/<\s*script\b/i, 'a <script> element'],
  [/<\s*foreignObject\b/i, 'a <foreignObject> element'],
  [/\son[a-z]+\s*=/i, 'an event handler attribute (on…=)'],
  [/javascript:/i, 'a javascript: URL'],
  [/\bhref\s*=\s*["']\s*(?!#)/i, 'a reference to another file (href other than #…)'],
  [/@import|url\(\s*["']?\s*(?!#)/i, 'a style that loads another file'],
];

/**
 * Reads an SVG file an installation supplies (a trademark Nyckel cannot ship), once at start, and
 * refuses anything but a plain, self-contained SVG image. `setting` names where the path came from.
 */
export function readSvgFile(file: string, setting: string): Buffer {
  let body: Buffer;
  try {
    body = fs.readFileSync(file);
  } catch (error) {
    throw new Error(`${setting}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`, { cause: error });
  }
  if (body.length === 0 || body.length > MAX_BYTES) throw new Error(`${setting}: ${file} must be an SVG file of at most ${MAX_BYTES / 1024} KB`);
  const text = body.toString('utf8').replace(/^\uFEFF/, '');
  // Before the root element only an XML declaration, comments and white space.
  const prolog = /^\s*(?:<\?xml[^>]*\?>\s*)?(?:<!--[\s\S]*?-->\s*)*/.exec(text)![0];
  const rest = text.slice(prolog.length);
  if (
    !/^<svg[\s>]/.test(rest) ||
    !/xmlns\s*=\s*["']http:\/\/www\.w3\.org\/2000\/svg["']/.test(rest.slice(0, rest.indexOf('>') + 1)) ||
    !/<\/svg>\s*$/.test(rest)
  ) {
    throw new Error(`${setting}: ${file} is not an SVG image (an <svg xmlns="http://www.w3.org/2000/svg"> root element)`);
  }
  for (const [pattern, what] of FORBIDDEN) {
    if (pattern.test(rest)) throw new Error(`${setting}: ${file} has ${what}; only a self-contained SVG image is served`);
  }
  return body;
}
