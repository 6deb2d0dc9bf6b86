// Run as its own process (node --allow-natives-syntax) by test/unit/wasm-baseline.test.ts: with the
// server's wasm flags set as src/main.ts sets them, runs a wasm function hot and prints whether V8
// recompiled it with its optimising compiler.
import vm from 'node:vm';
import '../../src/wasm-baseline.ts';

// (module (func (export "f") (param i32) (result i32) local.get 0 i32.const 1 i32.add))
const bytes = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 6, 1, 96, 1, 127, 1, 127, 3, 2, 1, 0, 7, 5, 1, 1, 102, 0, 0, 10, 9, 1, 7, 0, 32, 0, 65, 1, 106, 11,
]);
const { instance } = await WebAssembly.instantiate(bytes);
const f = instance.exports.f as (n: number) => number;
// V8's own test intrinsic, only with --allow-natives-syntax (compiled by V8 itself, no TypeScript transform sees it).
const optimised = vm.runInThisContext('(fn) => %IsTurboFanFunction(fn)') as (fn: unknown) => boolean;
for (let round = 0; round < 40 && !optimised(f); round++) {
  for (let i = 0; i < 1e6; i++) f(i);
  await new Promise((resolve) => setTimeout(resolve, 10));
}
console.log(JSON.stringify({ optimised: optimised(f) }));
