import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from '@jest/globals';
import { projectRoot } from '../support/process.ts';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nyckel-migrate-'));
afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

function openInOwnProcess(): { schemaEngineLoads: number } {
  const out = execFileSync(process.execPath, ['--import', 'tsx', 'test/support/open-migrated.ts', path.join(dataDir, 'pgdata')], {
    cwd: projectRoot,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
  });
  return JSON.parse(out.trim().split('\n').at(-1)!);
}

test('the schema engine is loaded to migrate a new database, and not at all when nothing is pending', () => {
  expect(openInOwnProcess().schemaEngineLoads).toBe(1);
  expect(openInOwnProcess().schemaEngineLoads).toBe(0);
}, 120_000);
