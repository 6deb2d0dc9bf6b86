import fs from 'node:fs';
import { createRequire } from 'node:module';
import { expect, test } from '@jest/globals';
import { compileBase64Module, decodeBase64Module, loadQueryCompilerFromFile, queryCompilerCompilations } from '../../src/storage/query-compiler.ts';
import { suiteDatabase } from '../support/suite-database.ts';

const db = suiteDatabase();
const BASE64_MODULE = '@prisma/client/runtime/query_compiler_fast_bg.postgresql.wasm-base64.mjs';

test('the client compiles its query compiler from the base64 file itself (no 4.4 MB module kept loaded), once', async () => {
  await db.prisma.user.count();
  await db.prisma.signingKey.findMany();
  expect(queryCompilerCompilations()).toBe(1);
  // Already in place: applying it again changes nothing.
  expect(loadQueryCompilerFromFile(db.prisma)).toBe(true);
});

test('the file decodes to the wasm the module exports', async () => {
  const file = createRequire(import.meta.url).resolve(BASE64_MODULE);
  const { wasm } = (await import(BASE64_MODULE)) as { wasm: string };
  expect(Buffer.from(decodeBase64Module(fs.readFileSync(file))).equals(Buffer.from(wasm, 'base64'))).toBe(true);
  expect(WebAssembly.Module.exports(compileBase64Module(file)).map((entry) => entry.name)).toContain('__wbindgen_start');
  expect(() => decodeBase64Module(Buffer.from('export const other = 1;'))).toThrow('not a base64 wasm module');
});

test('a client whose loader is not where it was, or not the import of a base64 module, keeps its own', () => {
  expect(loadQueryCompilerFromFile({})).toBe(false);
  const own = async () => new WebAssembly.Module(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]));
  const client = { _engineConfig: { compilerWasm: { getQueryCompilerWasmModule: own } } };
  expect(loadQueryCompilerFromFile(client)).toBe(false);
  expect(client._engineConfig.compilerWasm.getQueryCompilerWasmModule).toBe(own);
});

test("a base64 file of another shape leaves the compiling to the client's own loader", async () => {
  const own = async (..._from: string[]) => new WebAssembly.Module(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]));
  // The loader's source names the module it would import, as the generated client's does.
  const compilerWasm = { getQueryCompilerWasmModule: async () => own('import("../../test/fixtures/other-shape.wasm-base64.mjs")') };
  expect(loadQueryCompilerFromFile({ _engineConfig: { compilerWasm } })).toBe(true);
  const before = queryCompilerCompilations();
  expect(WebAssembly.Module.exports(await compilerWasm.getQueryCompilerWasmModule())).toEqual([]);
  expect(queryCompilerCompilations()).toBe(before);
});
