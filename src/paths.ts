import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The project's root (prisma/, interactions/, node_modules/). This file is one level below it, as is
 * the built server (dist/main.js, where esbuild bundles this module), so the same line finds it in both.
 */
export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
