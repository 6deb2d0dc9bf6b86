// `npm run build`: the server as JavaScript in dist/ (dist/main.js and the chunks it imports on
// demand), so production runs without tsx (no TypeScript compiler in memory, no per-file transform at
// start). Packages stay in node_modules (external); only the project's own sources, the generated
// Prisma client included, are bundled. Type checking is `npm run typecheck`'s job, not this one's.
import fs from 'node:fs';
import { build } from 'esbuild';
import { buildOptions } from './build-options.mjs';

// Chunk names change with their content: the previous build's must not pile up.
fs.rmSync(buildOptions.outdir, { recursive: true, force: true });
await build(buildOptions);
console.log('built dist/main.js');
