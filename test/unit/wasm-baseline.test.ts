import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { expect, test } from '@jest/globals';
import { projectRoot } from '../support/process.ts';

function hotFunctionOptimised(nodeFlags: string[]): boolean {
  const out = execFileSync(process.execPath, ['--allow-natives-syntax', ...nodeFlags, '--import', 'tsx', 'test/support/wasm-tier.ts'], {
    cwd: projectRoot,
    encoding: 'utf8',
  });
  return (JSON.parse(out.trim().split('\n').at(-1)!) as { optimised: boolean }).optimised;
}

test("the server's wasm stays on V8's baseline compiler however hot it runs (no optimising recompile: its memory)", () => {
  expect(hotFunctionOptimised([])).toBe(false);
}, 60_000);

test('a wasm flag given to node itself keeps V8 tiering up as it was told', () => {
  expect(hotFunctionOptimised(['--wasm-dynamic-tiering'])).toBe(true);
}, 60_000);

test('src/main.ts sets the wasm flags before it imports anything that compiles wasm', () => {
  const main = fs.readFileSync(path.join(projectRoot, 'src/main.ts'), 'utf8');
  const imports = main.split('\n').filter((line) => line.startsWith('import '));
  expect(imports[0]).toBe("import './wasm-baseline.ts';");
});
