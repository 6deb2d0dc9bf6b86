import fs from 'node:fs';
import path from 'node:path';
import { NyckelError } from '../errors.ts';

/**
 * The embedded PGlite database must never be opened by two processes at once (each would cache and
 * write the same files). Its opener holds `<database dir>.lock` (`<NYCKEL_DATA_DIR>/pgdata.lock`),
 * which holds its pid. A lock whose process is gone is stale and taken over.
 */
export class DataDirectoryLockedError extends NyckelError {
  constructor(
    readonly directory: string,
    readonly pid: number,
  ) {
    super(
      'temporarily_unavailable',
      `the embedded database in ${directory} is in use by process ${pid} (a running Nyckel?). Stop it first, or use PostgreSQL with DATABASE_URL.`,
    );
    this.name = 'DataDirectoryLockedError';
  }
}

/** Lock files this process holds, removed at exit even when the database was not closed. */
const held = new Set<string>();
let exitHookInstalled = false;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readPid(lockFile: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(lockFile, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Removes the lock file if it is still ours. */
function release(lockFile: string) {
  if (!held.delete(lockFile)) return;
  if (readPid(lockFile) === process.pid) fs.rmSync(lockFile, { force: true });
}

/** Creates the lock file from `temporary`; false when it already exists. */
function create(lockFile: string, temporary: string): boolean {
  try {
    fs.linkSync(temporary, lockFile);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'].includes(code ?? '')) throw error;
  }
  // A file system without hard links: a plain exclusive create.
  try {
    fs.writeFileSync(lockFile, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

/**
 * Takes the lock for the PGlite directory `directory`; returns the function that releases it. Throws
 * DataDirectoryLockedError while another live process (or this one) holds it.
 */
export function lockDataDirectory(directory: string): () => void {
  const lockFile = `${path.resolve(directory)}.lock`;
  fs.mkdirSync(path.dirname(lockFile), { recursive: true, mode: 0o700 });
  // Written whole under a private name, then linked into place: the link is the exclusive create, and
  // nobody ever reads a half-written lock file.
  const temporary = `${lockFile}.${process.pid}.tmp`;
  fs.writeFileSync(temporary, `${process.pid}\n`, { mode: 0o600 });
  try {
    for (let attempt = 0; ; attempt++) {
      if (create(lockFile, temporary)) break;
      const pid = readPid(lockFile);
      // Our own pid in a lock this process does not hold is a leftover of an earlier process that had
      // the same pid (a container restarted on the same volume, where Nyckel is often pid 1).
      const stale = pid === undefined || (pid === process.pid ? !held.has(lockFile) : !isAlive(pid));
      if (!stale || attempt >= 3) throw new DataDirectoryLockedError(directory, pid ?? 0);
      fs.rmSync(lockFile, { force: true });
    }
  } finally {
    fs.rmSync(temporary, { force: true });
  }
  held.add(lockFile);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => held.forEach(release));
  }
  return () => release(lockFile);
}
