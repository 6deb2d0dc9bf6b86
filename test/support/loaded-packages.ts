// Run as its own process by test/unit/lazy-packages.test.ts: imports the server's module graph (as
// `npm start` does, without starting it) and prints which of the packages named on the command line
// were loaded. ES modules are seen through a load hook (Node 22.15+), CommonJS ones in require.cache.
import module, { createRequire } from 'node:module';

type LoadHook = (url: string, context: unknown, next: (url: string, context: unknown) => unknown) => unknown;
const loaded: string[] = [];
const { registerHooks } = module as unknown as { registerHooks?: (hooks: { load: LoadHook }) => void };
registerHooks?.({
  load(url, context, next) {
    loaded.push(url);
    return next(url, context);
  },
});
await import('../../src/nyckel.ts');

loaded.push(...Object.keys(createRequire(import.meta.url).cache));
const packages = process.argv.slice(2);
console.log(JSON.stringify(packages.filter((name) => loaded.some((file) => file.includes(`/node_modules/${name}/`)))));
