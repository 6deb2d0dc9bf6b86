#!/usr/bin/env node
// The `nyckel` operator CLI: runs src/cli/main.ts through tsx. Settings come from the environment,
// and from ./.env when there is one (variables already set win), as for the server.
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

try {
  if (fs.existsSync('.env')) process.loadEnvFile('.env');
} catch (error) {
  console.error(`nyckel: cannot read .env: ${error.message}`);
  process.exit(1);
}
// The package's own tsconfig, whatever the working directory.
const tsconfig = fileURLToPath(new URL('../tsconfig.json', import.meta.url));
register(fs.existsSync(tsconfig) ? { tsconfig } : {});
await import('../src/cli/main.ts');
