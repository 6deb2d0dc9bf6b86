#!/usr/bin/env node
// Production start (`npm run start:prod`, the Docker image): the built server, dist/main.js, without
// tsx. `npm run build` makes it; `npm start` runs the sources through tsx for development.
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

const built = fileURLToPath(new URL('../dist/main.js', import.meta.url));
if (!fs.existsSync(built)) {
  console.error('Nyckel is not built: run `npm run build` first (or `npm start` to run the sources).');
  process.exit(1);
}
await import(built);
