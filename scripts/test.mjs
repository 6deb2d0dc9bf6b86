// `npm test`: jest on ESM needs Node's VM modules flag. Extra arguments go to jest.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const jest = require.resolve('jest/bin/jest');
const result = spawnSync(process.execPath, ['--experimental-vm-modules', '--no-warnings', jest, '--forceExit', ...process.argv.slice(2)], {
  stdio: 'inherit',
  env: { ...process.env, NODE_ENV: 'test' },
});
process.exit(result.status ?? 1);
