import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { projectRoot } from '../../src/paths.ts';

const sourceRoot = path.join(projectRoot, 'src');

/**
 * Which folder of src/ may import which: a folder imports its own layer or lower ones, never a
 * higher one, and no chain of imports leads from a folder back to itself. Type-only imports count
 * too: a type from a higher layer is a dependency on it all the same.
 */
const layers: Record<string, readonly string[]> = {
  kernel: ['errors.ts', 'logger.ts', 'paths.ts', 'generated'],
  foundation: ['config', 'security', 'i18n'],
  infrastructure: ['storage', 'delivery', 'observability'],
  domain: ['accounts', 'clients', 'branding', 'keys', 'factors'],
  web: ['server', 'provider', 'web', 'account', 'admin', 'authenticator'],
  app: ['cli', '(wiring)'],
};
const layerOrder = Object.keys(layers);
const rankOf = new Map(Object.entries(layers).flatMap(([layer, folders]) => folders.map((folder) => [folder, layerOrder.indexOf(layer)] as const)));

/** The folder a source file belongs to; the top-level files that are not the kernel wire the app together. */
function folderOf(file: string): string {
  const [first] = path.relative(sourceRoot, file).split(path.sep);
  return rankOf.has(first) ? first : '(wiring)';
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'generated' ? [] : sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

const IMPORT = /(?:^|\s)(?:import|export)\s[^;]*?\sfrom\s+'(\.[^']+)'|import\(\s*'(\.[^']+)'\s*\)/gm;

interface Edge {
  from: string;
  to: string;
}

function relativeImports(file: string): Edge[] {
  const text = fs.readFileSync(file, 'utf8');
  return [...text.matchAll(IMPORT)].map((match) => ({ from: file, to: path.resolve(path.dirname(file), match[1] ?? match[2]) }));
}

const files = sourceFiles(sourceRoot);
const imports = files.flatMap(relativeImports).filter((edge) => edge.to.startsWith(sourceRoot));
const show = (edge: Edge) => `${path.relative(projectRoot, edge.from)} -> ${path.relative(projectRoot, edge.to)}`;

/** Folders that reach themselves again through their imports (Tarjan's strongly connected components). */
function folderCycles(graph: Map<string, Set<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (node: string) => {
    index.set(node, index.size);
    low.set(node, index.get(node)!);
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (stack.includes(next)) {
        low.set(node, Math.min(low.get(node)!, index.get(next)!));
      }
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string | undefined;
    do {
      member = stack.pop()!;
      component.push(member);
    } while (member !== node);
    if (component.length > 1) cycles.push(component.sort());
  };
  for (const node of graph.keys()) if (!index.has(node)) visit(node);
  return cycles;
}

describe('layers of src/', () => {
  test('the scan sees the sources and their imports', () => {
    expect(files.length).toBeGreaterThan(100);
    expect(imports.length).toBeGreaterThan(500);
    expect(new Set(files.map(folderOf))).toEqual(new Set([...rankOf.keys()].filter((folder) => folder !== 'generated')));
  });

  test('every folder is in a layer', () => {
    const unplaced = fs
      .readdirSync(sourceRoot, { withFileTypes: true })
      .filter((entry) => entry.isDirectory() && !rankOf.has(entry.name))
      .map((entry) => entry.name);
    expect(unplaced).toEqual([]);
  });

  test('no import points to a higher layer', () => {
    const upward = imports.filter((edge) => rankOf.get(folderOf(edge.from))! < rankOf.get(folderOf(edge.to))!);
    expect(upward.map(show)).toEqual([]);
  });

  test('no folder cycle', () => {
    const graph = new Map<string, Set<string>>();
    for (const edge of imports) {
      const [from, to] = [folderOf(edge.from), folderOf(edge.to)];
      if (from !== to) graph.set(from, (graph.get(from) ?? new Set()).add(to));
    }
    expect(folderCycles(graph)).toEqual([]);
  });

  test("a factor's folder imports no other factor's folder (shared parts live in src/factors/shared)", () => {
    const factorsRoot = path.join(sourceRoot, 'factors');
    const factorFolder = (file: string) => {
      const [first, second] = path.relative(factorsRoot, file).split(path.sep);
      return second === undefined || first === 'shared' || first.startsWith('..') ? undefined : first;
    };
    const across = imports.filter((edge) => {
      const [from, to] = [factorFolder(edge.from), factorFolder(edge.to)];
      return from !== undefined && to !== undefined && from !== to;
    });
    expect(across.map(show)).toEqual([]);
  });
});
