import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { openDatabase, type Database } from '../../src/storage/db.ts';
import { projectRoot } from './process.ts';

export const cliBin = path.join(projectRoot, 'bin', 'nyckel.js');

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** What the CLI needs to find its data: the embedded database's directory, the master key, the clients file. */
export interface CliEnvironment {
  dataDir: string;
  masterKey: string;
  clientsFile: string;
}

/**
 * Runs `nyckel <args>` as an operator would, in a child process. Everything the CLI reads is set
 * here, so that a developer's .env in the project cannot leak in; `env` adds or overrides.
 */
export function runCli(
  environment: CliEnvironment,
  args: string[],
  options: { input?: string; env?: Record<string, string>; cwd?: string } = {},
): Promise<CliRun> {
  const child = spawn(process.execPath, [cliBin, ...args], {
    cwd: options.cwd ?? projectRoot,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? os.tmpdir(),
      NODE_ENV: 'test',
      DATABASE_URL: '',
      NYCKEL_DATA_DIR: environment.dataDir,
      NYCKEL_MASTER_KEY: environment.masterKey,
      NYCKEL_CLIENTS: environment.clientsFile,
      // Cheaper hashes keep the suites quick; the benchmark measures the production parameters.
      NYCKEL_ARGON2_MEMORY_KIB: '8192',
      NYCKEL_ARGON2_TIME_COST: '1',
      ...options.env,
    },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  child.stdin.on('error', () => {}); // the CLI may exit before reading stdin
  child.stdin.end(options.input ?? '');
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The embedded database of a CLI data directory, opened between CLI runs (it admits one process at a time). */
export async function withEmbeddedDatabase<T>(dataDir: string, work: (db: Database) => Promise<T>): Promise<T> {
  const db = await openDatabase({ kind: 'pglite', dataDir: path.join(dataDir, 'pgdata') });
  try {
    return await work(db);
  } finally {
    await db.close();
  }
}
