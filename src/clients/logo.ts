import crypto from 'node:crypto';
import fs from 'node:fs';

/** A logo read at start: served by Nyckel itself (CSP 'self') under a URL that names its content. */
export interface Logo {
  type: 'image/svg+xml' | 'image/png';
  bytes: Buffer;
  /** /assets/logo-<hash>.svg|png: a new file is a new URL, so the old one can be cached for a year. */
  path: string;
}

/** Large enough for any sensible logo, small enough that it cannot bloat every page. */
export const MAX_LOGO_BYTES = 256 * 1024;

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Why a logo file is refused, or undefined when it is a PNG or a plain SVG. */
function problemOf(bytes: Buffer): { problem?: string; type?: Logo['type'] } {
  if (bytes.length === 0) return { problem: 'is empty' };
  if (bytes.length > MAX_LOGO_BYTES) return { problem: `is ${bytes.length} bytes; a logo may have at most ${MAX_LOGO_BYTES}` };
  if (bytes.subarray(0, 8).equals(PNG_SIGNATURE)) {
    // The first chunk of every PNG is IHDR (13 bytes of width, height, depth, …).
    return bytes.length > 24 && bytes.toString('latin1', 12, 16) === 'IHDR' ? { type: 'image/png' } : { problem: 'is a truncated PNG' };
  }
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  if (text.includes('\uFFFD')) return { problem: 'is neither a PNG nor a UTF-8 SVG file' };
  // An optional BOM, XML declaration, comments and doctype, then the <svg> element.
  const prologue = /^\uFEFF?\s*(<\?xml[^>]*\?>\s*)?(<!--[\s\S]*?-->\s*)*(<!DOCTYPE svg[^>[]*>\s*)?(<!--[\s\S]*?-->\s*)*<svg[\s>]/i;
  if (!prologue.test(text) || !/<\/svg>\s*$/i.test(text.replace(/<!--[\s\S]*?-->\s*$/g, ''))) {
    return { problem: 'is neither a PNG (by its signature) nor an SVG document (<svg …>…</svg>)' };
  }
  // A logo is a picture: nothing that runs, loads or embeds (an SVG opened on its own is a document).
  if (/<script[\s>/]|<foreignObject[\s>/]|\son[a-z]+\s*=|javascript:|<!ENTITY/i.test(text)) {
    return { problem: 'is an SVG with scripts, event handlers, embedded HTML or entities; export a plain SVG' };
  }
  if (/(?:xlink:)?href\s*=\s*["'](?!#)/i.test(text)) return { problem: 'is an SVG that refers to other files or URLs; embed everything or use a PNG' };
  return { type: 'image/svg+xml' };
}

/** Reads and checks a logo; throws a one-line reason naming the file. */
export function readLogo(file: string): Logo {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    throw new Error(`${file} cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const { problem, type } = problemOf(bytes);
  if (problem || !type) throw new Error(`${file} ${problem ?? 'is not an image'}`);
  const hash = crypto.createHash('sha256').update(bytes).digest('base64url').slice(0, 16);
  return { type, bytes, path: `/assets/logo-${hash}.${type === 'image/png' ? 'png' : 'svg'}` };
}
