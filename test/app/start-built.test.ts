import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { freePort, projectRoot, startServerProcess, type RunningServer } from '../support/process.ts';

// The production start: `npm run build` (esbuild → dist/main.js), then `node bin/launch.js`, no tsx.
let dataDir: string;
let server: RunningServer;

beforeAll(() => {
  execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: projectRoot, stdio: 'pipe' });
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nyckel-built-'));
}, 120_000);
afterAll(async () => {
  await server?.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test('the built server starts on a new embedded database, migrates it and serves discovery and the hosted pages', async () => {
  const port = await freePort();
  const issuer = `http://localhost:${port}`;
  server = startServerProcess({ PORT: String(port), ISSUER: issuer, NYCKEL_DATA_DIR: dataDir, NYCKEL_CLIENTS: path.join(projectRoot, 'config/clients.yaml') }, [
    'bin/launch.js',
  ]);
  await server.waitFor(/demo user: demo@nyckel\.example {2}password: \S+/, 60_000);
  expect((await fetch(`${issuer}/readyz`)).status).toBe(200);
  const discovery = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as { issuer: string };
  expect(discovery.issuer).toBe(issuer);
  // Templates and locale files are found from dist/ as from src/.
  const page = await fetch(`${issuer}/demo`);
  expect(page.status).toBeLessThan(500);
  // No tsx in the process: the built file is plain JavaScript.
  expect(fs.readFileSync(path.join(projectRoot, 'dist/main.js'), 'utf8')).not.toMatch(/from ["']tsx/);
  // A supported runtime: oidc-provider's warning is gone on Node 22 and 24.
  if (Number(process.versions.node.split('.')[0]) >= 22) expect(server.output()).not.toContain('Unsupported runtime');
}, 120_000);

test('bin/launch.js refuses to start without a build, naming the command to run', () => {
  const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'nyckel-unbuilt-'));
  try {
    fs.mkdirSync(path.join(copy, 'bin'));
    fs.copyFileSync(path.join(projectRoot, 'bin/launch.js'), path.join(copy, 'bin/launch.js'));
    fs.writeFileSync(path.join(copy, 'package.json'), '{"type":"module"}');
    let output = '';
    try {
      execFileSync(process.execPath, ['bin/launch.js'], { cwd: copy, stdio: 'pipe', encoding: 'utf8' });
    } catch (error) {
      output = String((error as { stderr?: string }).stderr);
    }
    expect(output).toContain('npm run build');
  } finally {
    fs.rmSync(copy, { recursive: true, force: true });
  }
});
