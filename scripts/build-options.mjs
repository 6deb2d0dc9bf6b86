// esbuild's options for `npm run build` (scripts/build.mjs); test/unit/lazy-packages.test.ts builds
// with them too.
export const buildOptions = {
  entryPoints: ['src/main.ts'],
  outdir: 'dist',
  bundle: true,
  // The sources' dynamic imports become chunks of their own, loaded on first use as with tsx: without
  // it they were bundled into main.js and the packages they import were loaded at every start (a
  // mail SDK, twilio, ioredis, PGlite: about 13 MiB of idle RSS).
  splitting: true,
  packages: 'external',
  platform: 'node',
  format: 'esm',
  target: 'node22',
  sourcemap: 'linked',
  logLevel: 'warning',
  // Bundled CommonJS-style code (the generated client) may call require().
  banner: { js: "import { createRequire as __nyckelCreateRequire } from 'node:module'; const require = __nyckelCreateRequire(import.meta.url);" },
};
