// `npm run build`: the server as one JavaScript file, dist/main.js, so production runs without tsx
// (no TypeScript compiler in memory, no per-file transform at start). Packages stay in node_modules
// (external); only the project's own sources, the generated Prisma client included, are bundled.
// Type checking is `npm run typecheck`'s job, not this one's.
import { build } from 'esbuild';

await build({
  entryPoints: ['src/main.ts'],
  outfile: 'dist/main.js',
  bundle: true,
  packages: 'external',
  platform: 'node',
  format: 'esm',
  target: 'node22',
  sourcemap: 'linked',
  logLevel: 'warning',
  // Bundled CommonJS-style code (the generated client) may call require().
  banner: { js: "import { createRequire as __nyckelCreateRequire } from 'node:module'; const require = __nyckelCreateRequire(import.meta.url);" },
});
console.log('built dist/main.js');
