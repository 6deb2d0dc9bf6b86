import { ZodError, type ZodType } from 'zod';
import { checkPassword, passwordProblemText } from '../accounts/password-policy.ts';
import { ClientsFileError } from '../clients/clients-file.ts';
import { loadSettings, SettingsError, type Settings } from '../config/settings.ts';
import { NyckelError } from '../errors.ts';
import type { Database } from '../storage/db.ts';
import type { RedisStore } from '../storage/redis.ts';
import { Accounts } from '../accounts/accounts.ts';
import { AuditLog } from '../accounts/audit.ts';
import { inTurn, revokeGrantsInRedis, type RevokeElsewhere } from '../accounts/revoke-access.ts';

/** The actor recorded in audit events caused by the CLI. */
export const CLI_ACTOR = 'cli';

/** An expected failure of a command: printed as `nyckel: <message>`, exit status 1. */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}

/** Settings from the environment (and `.env`, loaded by bin/nyckel.js). */
export function settings(): Settings {
  return loadSettings();
}

/**
 * Runs `work` on the database named by the settings, migrated first, and always closes it. Like
 * openMigratedDatabase in src/nyckel.ts (not imported: it loads the whole server), except that the
 * wasm schema engine (about a second) starts only when a migration is pending.
 */
export async function withDatabase<T>(config: Settings, work: (db: Database) => Promise<T>): Promise<T> {
  const db = await openDatabase(config);
  try {
    const { applyMigrationsExclusively, pendingMigrations } = await import('../storage/migrate.ts');
    const { databaseTarget } = await import('../storage/db.ts');
    const pending = await pendingMigrations((sql) => db.prisma.$queryRawUnsafe<Array<{ migration_name: string }>>(sql));
    if (pending.length > 0) await applyMigrationsExclusively(databaseTarget(config), db.adapterFactory);
    return await work(db);
  } finally {
    await db.close();
  }
}

export type LazyRedis = Awaited<ReturnType<typeof lazyRedis>>;

/** Opens Redis only for a command that needs it (counters, revoked grants), and only when the nodes use it. */
export async function lazyRedis(config: Settings) {
  let store: Promise<RedisStore> | undefined;
  return {
    client: async () => {
      if (!config.redis) return undefined;
      store ??= Promise.all([import('../storage/redis.ts'), import('pino')]).then(([{ openRedis }, { default: pino }]) =>
        openRedis(config.redis!, pino({ level: 'silent' })),
      );
      return (await store).client;
    },
    close: async () => {
      if (store) await (await store).close();
    },
  };
}

/**
 * Accounts for a command that may revoke a user's access (disable, set-password, reset-factors): the
 * tokens the nodes keep in Redis go too, and the apps of the ended sessions are told (back-channel
 * logout; oidc-provider loads only then).
 */
export function cliAccounts(db: Database, config: Settings, redis: LazyRedis): Accounts {
  const warn = (details: Record<string, unknown>, message: string) =>
    console.error(`nyckel: warning: ${message}${typeof details.clientId === 'string' ? ` (${details.clientId})` : ''}`);
  let notices: RevokeElsewhere | undefined;
  const tellApps: RevokeElsewhere = async (revoked) => {
    if (revoked.endedSessions.length === 0) return;
    if (!notices) {
      const [{ commandLineLogoutNotices }, { resolveMasterKey, SecretBox }] = await Promise.all([
        import('../provider/command-line-logout.ts'),
        import('../security/crypto.ts'),
      ]);
      notices = commandLineLogoutNotices({ settings: config, prisma: db.prisma, box: new SecretBox(resolveMasterKey(config)), accounts: () => accounts }, warn);
    }
    await notices(revoked);
  };
  const accounts = new Accounts(db.prisma, new AuditLog(db.prisma), config.argon2, inTurn(revokeGrantsInRedis(redis.client, warn), tellApps));
  return accounts;
}

/** Opens (without migrating) the database named by the settings; the storage code loads only now. */
export async function openDatabase(config: Settings): Promise<Database> {
  const storage = await import('../storage/db.ts');
  return storage.openDatabase(storage.databaseTarget(config));
}

/** Parses one command-line value with a schema, naming the option in the message. */
export function parseValue<T>(label: string, schema: ZodType<T>, value: string): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new CliError(`${label} "${value}" ${parsed.error.issues.map((issue) => issue.message).join('; ')}`);
}

/**
 * The password piped to stdin, without one trailing newline (so `echo … |` works). A terminal is
 * refused rather than read, since what is typed there would be echoed.
 */
export async function readPasswordFromStdin(stdin: NodeJS.ReadStream = process.stdin): Promise<string> {
  if (stdin.isTTY) {
    throw new CliError(
      '--password-stdin reads the password from a pipe, not from a terminal (it would be echoed): e.g. `read -rs PW && printf \'%s\\n\' "$PW" | nyckel …`',
    );
  }
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(Buffer.from(chunk as Buffer));
  const password = Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
  if (password === '') {
    throw new CliError('no password on stdin (--password-stdin): pipe it in, e.g. `printf "%s\\n" "$PASSWORD" | nyckel users add … --password-stdin`');
  }
  return password;
}

/** The password policy's verdict before the database is opened (Accounts checks it again). */
export function assertAcceptablePassword(password: string, names: { email?: string; username?: string }) {
  const problem = checkPassword(password, names);
  if (problem) throw new CliError(`password ${passwordProblemText[problem]}`);
}

/** One line for the operator for every expected failure; undefined for anything else. */
export function describeExpectedError(error: unknown): string | undefined {
  if (error instanceof CliError || error instanceof NyckelError) return error.message;
  if (error instanceof SettingsError) return `invalid configuration in the environment: ${error.problems.join('; ')}`;
  if (error instanceof ClientsFileError) return error.message;
  if (error instanceof ZodError) {
    return error.issues.map((issue) => (issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message)).join('; ');
  }
  return undefined;
}

/** Prints rows as aligned columns under a header. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}
