import v8 from 'node:v8';

/**
 * The server's WebAssembly (the embedded PostgreSQL, PGlite, and Prisma's query compiler) runs on
 * V8's baseline compiler, Liftoff, only. By default V8 recompiles hot wasm functions with its
 * optimising compiler; for PGlite one of them (a single function of about 100 kB) takes about a second
 * of CPU and over 600 MB of compiler memory, at start and again under load, and the optimised code and
 * the memory the allocator keeps afterwards stay in the RSS. Measured with `npm run bench:footprint`:
 * about 40 MiB less idle RSS, 80 MiB less peak RSS and a start 0.4 s faster on PGlite, for a few percent
 * more CPU per sign-in under sustained load (baseline code runs slower than optimised code).
 *
 * Imported first by src/main.ts, before any wasm is compiled (V8 reads these flags when it compiles a
 * module; `--liftoff-only` alone does not turn off tiering once V8 is running, hence all three).
 * Starting node with a wasm flag of its own (`node --wasm-dynamic-tiering bin/launch.js`) keeps V8's.
 */
export const BASELINE_ONLY_FLAGS = ['--liftoff-only', '--no-wasm-tier-up', '--no-wasm-dynamic-tiering'];

export function useWasmBaselineOnly(execArgv: readonly string[] = process.execArgv): boolean {
  if (execArgv.some((flag) => /wasm|liftoff/.test(flag))) return false;
  v8.setFlagsFromString(BASELINE_ONLY_FLAGS.join(' '));
  return true;
}

useWasmBaselineOnly();
