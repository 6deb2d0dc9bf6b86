import fs from 'node:fs';
import { createRequire } from 'node:module';

/**
 * Prisma's generated client gets its query compiler (wasm) by importing a 4.4 MB JavaScript module
 * whose one export is the wasm as a base64 string literal. An imported module stays loaded for the
 * life of the process, so its source and that literal, 4.4 MB each, stayed in the V8 heap of every
 * idle server (about 9 MiB of its RSS). Here the same file is read and decoded instead, and nothing of
 * it is left once the wasm is compiled.
 *
 * The generated client's loader is a method of the compiler settings the client keeps (an internal of
 * Prisma's): when that is not where it was, or its import is not found in the loader's source, the
 * client keeps its own loader. test/storage/query-compiler.test.ts notices when that happens.
 */
interface CompilerWasm {
  getQueryCompilerWasmModule: () => Promise<WebAssembly.Module>;
}

const require = createRequire(import.meta.url);
let compiledFromFile = 0;

/** How many times the query compiler was compiled from its file by this module (a test's figure). */
export const queryCompilerCompilations = () => compiledFromFile;

/**
 * The wasm of a base64 module as Prisma ships it (`const wasm = "…";` then `export { wasm }`), decoded
 * piecewise straight into the result, so no 4.4 MB string is made.
 */
export function decodeBase64Module(file: Uint8Array): Uint8Array<ArrayBuffer> {
  const source = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  const start = source.indexOf('"') + 1;
  const end = source.indexOf('"', start);
  if (start === 0 || end < 0 || !source.toString('latin1', 0, start).includes('wasm')) throw new Error('not a base64 wasm module');
  const out = Buffer.from(new ArrayBuffer(Math.ceil((end - start) / 4) * 3));
  let length = 0;
  // A multiple of 4 characters, so that no piece ends inside a quantum.
  const piece = 64 * 1024;
  for (let at = start; at < end; at += piece) length += out.write(source.toString('latin1', at, Math.min(at + piece, end)), length, 'base64');
  return new Uint8Array(out.buffer, 0, length);
}

/** Frees an ArrayBuffer's memory now: transferring it to an empty one detaches it. */
const release = (buffer: ArrayBuffer) => (buffer as ArrayBuffer & { transfer(length: number): ArrayBuffer }).transfer(0);

/**
 * Compiles the query compiler from its base64 module's file. The file's bytes and the decoded wasm
 * (V8 keeps a copy of its own) are released at once rather than at some later collection, which an
 * idle server would not have.
 */
export function compileBase64Module(file: string): WebAssembly.Module {
  const fd = fs.openSync(file, 'r');
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = new Uint8Array(fs.fstatSync(fd).size);
    let read = 0;
    while (read < bytes.length) {
      const n = fs.readSync(fd, bytes, read, bytes.length - read, read);
      if (n === 0) throw new Error(`${file} was cut short`);
      read += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  const wasm = decodeBase64Module(bytes);
  release(bytes.buffer);
  try {
    return new WebAssembly.Module(wasm);
  } finally {
    release(wasm.buffer);
  }
}

/** Makes the client compile its query compiler from the file; false when it keeps its own loader. */
export function loadQueryCompilerFromFile(client: object): boolean {
  const compilerWasm = (client as { _engineConfig?: { compilerWasm?: Partial<CompilerWasm> } })._engineConfig?.compilerWasm;
  const original = compilerWasm?.getQueryCompilerWasmModule;
  if (typeof original !== 'function') return false;
  if ((original as { fromFile?: boolean }).fromFile) return true;
  const specifier = /import\(\s*["']([^"']+\.wasm-base64\.mjs)["']\s*\)/.exec(original.toString())?.[1];
  if (!specifier) return false;
  const load = async () => {
    let module: WebAssembly.Module;
    try {
      module = compileBase64Module(require.resolve(specifier));
    } catch {
      // A file of another shape (a newer Prisma): the client's own loader still works.
      return original.call(compilerWasm);
    }
    compiledFromFile++;
    return module;
  };
  compilerWasm!.getQueryCompilerWasmModule = Object.assign(load, { fromFile: true });
  return true;
}
