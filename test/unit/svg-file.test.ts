import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { readSvgFile } from '../../src/server/svg-file.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nyckel-svg-'));
function file(text: string): string {
  const name = path.join(dir, `${Math.random().toString(36).slice(2)}.svg`);
  fs.writeFileSync(name, text);
  return name;
}
const svg = (inner: string) => `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">${inner}</svg>`;

describe('an SVG file an installation supplies (NYCKEL_BANKID_LOGO_FILE)', () => {
  test('a plain SVG image, with an XML declaration, comments, inner links and inline styles, is read as it is', () => {
    const text = `\uFEFF<?xml version="1.0"?>\n<!-- mark -->\n${svg('<defs><linearGradient id="g"/></defs><rect fill="url(#g)" style="opacity:.9"/><use href="#g"/>')}\n`;
    expect(readSvgFile(file(text), 'NYCKEL_BANKID_LOGO_FILE').toString('utf8')).toBe(text);
  });

  test.each([
    ['a missing file', undefined, /NYCKEL_BANKID_LOGO_FILE: cannot read .* \(ENOENT\)/],
    ['an empty file', '', /at most 256 KB/],
    ['a PNG', '\x89PNG\r\n', /is not an SVG image/],
    ['HTML', '<html><svg xmlns="http://www.w3.org/2000/svg"></svg></html>', /is not an SVG image/],
    ['an SVG without its namespace', '<svg viewBox="0 0 1 1"></svg>', /is not an SVG image/],
    ['a cut-off SVG', '<svg xmlns="http://www.w3.org/2000/svg"><rect/>', /is not an SVG image/],
    ['a script', svg('<script>alert(1)</script>'), /<script> element/],
    ['an event handler', svg('<rect onload="alert(1)"/>'), /event handler/],
    ['foreign content', svg('<foreignObject><div/></foreignObject>'), /foreignObject/],
    ['an entity', `<!DOCTYPE svg [<!ENTITY x "y">]>${svg('')}`, /is not an SVG image|DOCTYPE/],
    ['a link to another file', svg('<image href="https://example.com/x.png"/>'), /reference to another file/],
    ['a style loading a file', svg('<style>@import url(https://example.com/x.css);</style>'), /loads another file/],
    ['a javascript: URL', svg('<a href="javascript:alert(1)"><rect/></a>'), /javascript: URL|another file/],
  ])('refused at start: %s', (_what, text, message) => {
    const name = text === undefined ? path.join(dir, 'missing.svg') : file(text);
    expect(() => readSvgFile(name, 'NYCKEL_BANKID_LOGO_FILE')).toThrow(message);
  });

  test('larger than 256 KB is refused', () => {
    expect(() => readSvgFile(file(svg(`<!-- ${'x'.repeat(300 * 1024)} -->`)), 'NYCKEL_BANKID_LOGO_FILE')).toThrow(/at most 256 KB/);
  });
});
