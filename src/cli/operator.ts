import fs from 'node:fs';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { emailSchema, type Accounts } from '../accounts/accounts.ts';
import { AuditLog } from '../accounts/audit.ts';
import type { Settings } from '../config/settings.ts';
import type { Database } from '../storage/db.ts';
import { isNyckelError } from '../errors.ts';
import type { AccountLocks } from '../admin/operations.ts';
import { cliAccounts, CLI_ACTOR, CliError, lazyRedis, parseValue, settings, table, withDatabase } from './common.ts';

/** The help-desk commands: `users show|set-email|reset-factors|unlock|import` and `audit tail`. */

interface Operator {
  config: Settings;
  db: Database;
  audit: AuditLog;
  accounts: Accounts;
  /** The failure and password counters, where the nodes keep them (Redis when configured). */
  locks: () => Promise<AccountLocks>;
}

function asOperator<T>(work: (op: Operator) => Promise<T>): Promise<T> {
  const config = settings();
  return withDatabase(config, async (db) => {
    const audit = new AuditLog(db.prisma);
    const redis = await lazyRedis(config);
    try {
      const locks = async () => {
        const { accountLocks } = await import('../admin/operations.ts');
        return accountLocks(config, { prisma: db.prisma, redis: await redis.client() });
      };
      return await work({ config, db, audit, accounts: cliAccounts(db, config, redis), locks });
    } finally {
      await redis.close();
    }
  });
}

const at = (iso: string | null) => (iso ? iso.replace(/\.\d{3}Z$/, 'Z') : '-');

function positiveCount(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1 || parsed > 10_000) throw new InvalidArgumentError('must be a whole number from 1 to 10000');
  return parsed;
}

function describeEvent(event: { at: string; type: string; email: string | null; ip: string | null; data: Record<string, unknown> }) {
  // The database keeps JSON keys in its own order: the actor first, then the rest alphabetically.
  const data = Object.entries(event.data)
    .sort(([a], [b]) => (a === 'actor' ? -1 : b === 'actor' ? 1 : a.localeCompare(b)))
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join(' ');
  return [at(event.at), event.type, event.email ?? '-', event.ip ? `ip=${event.ip}` : '', data].filter(Boolean).join('  ');
}

export function registerOperatorUserCommands(users: Command) {
  users
    .command('show <user>')
    .description("a user's addresses, phones, second factors, remembered browsers, locks and latest security events")
    .option('--json', 'print JSON')
    .action(async (email: string, options: { json?: boolean }) => {
      const { userDetails } = await import('../admin/operations.ts');
      const details = await asOperator(async ({ db, accounts, locks }) => userDetails(db.prisma, await accounts.requireByLogin(email), await locks()));
      if (options.json) {
        console.log(JSON.stringify(details, null, 2));
        return;
      }
      const lines = [
        `${[details.username, details.email].filter(Boolean).join('  ')}  (id ${details.id})`,
        `name: ${details.name ?? '-'}    status: ${details.status}    locale: ${details.locale ?? '-'}`,
        ...(details.deletionDueAt ? [`deletion asked by the user: erased ${at(details.deletionDueAt)} unless enabled before`] : []),
        `created ${at(details.createdAt)}    password changed ${at(details.passwordChangedAt)}`,
        '',
        'Email addresses:',
        table(
          ['ADDRESS', 'SIGN-IN', 'VERIFIED'],
          details.emails.map((e) => [e.address, e.signIn ? 'yes' : '', e.verified ? at(e.verifiedAt) : 'no']),
        ),
        '',
        'Phones:',
        details.phones.length
          ? table(
              ['NUMBER', 'VERIFIED'],
              details.phones.map((p) => [p.number, p.verified ? at(p.verifiedAt) : 'no']),
            )
          : '  none',
        '',
        'Second factors:',
        details.methods.length
          ? table(
              ['TYPE', 'LABEL', 'CONFIRMED', 'CREATED', 'LAST USED'],
              details.methods.map((m) => [m.type, m.label, m.confirmed ? 'yes' : 'no', at(m.createdAt), at(m.lastUsedAt)]),
            )
          : '  none (password only)',
        '',
        `Remembered browsers: ${details.rememberedBrowsers}`,
        `Locks: ${
          details.locks.length
            ? details.locks.map((l) => `${l.kind} ${l.locked ? 'LOCKED' : 'counting'} (${l.failures} failure(s), until ${at(l.until)})`).join('; ')
            : 'none'
        }`,
        '',
        'Latest security events:',
        details.recentEvents.length ? details.recentEvents.map((e) => `  ${describeEvent(e)}`).join('\n') : '  none',
      ];
      console.log(lines.join('\n'));
    });

  users
    .command('set-email <user> <new-email>')
    .description('change the address a user signs in with (the old one stays as a contact address)')
    .action(async (email: string, newEmail: string) => {
      const address = parseValue('new email', emailSchema, newEmail);
      const { setSignInEmail } = await import('../admin/operations.ts');
      const updated = await asOperator(async ({ db, audit, accounts }) =>
        setSignInEmail(db.prisma, audit, await accounts.requireByLogin(email), address, { actor: CLI_ACTOR }),
      );
      console.log(`${email.trim().toLowerCase()} now signs in as ${updated.email}`);
    });

  users
    .command('reset-factors <user>')
    .description('remove every second factor, phone, remembered browser, session and relying-party grant of a user (they enrol again at the next sign-in)')
    .option('--reason <text>', 'why (kept in the audit log): required')
    .action(async (email: string, options: { reason?: string }) => {
      const reason = options.reason?.trim();
      if (!reason) throw new CliError('--reason "…" is required: say why the factors are reset (it is kept in the audit log)');
      const { resetSecondFactors } = await import('../accounts/reset-factors.ts');
      const removed = await asOperator(async ({ db, audit, accounts }) =>
        resetSecondFactors(db.prisma, audit, (await accounts.requireByLogin(email)).id, { reason, actor: CLI_ACTOR }, accounts.revokeElsewhere),
      );
      console.log(
        `reset ${email.trim().toLowerCase()}: removed ${removed.factors} second factor(s), ${removed.phones} phone(s), ` +
          `${removed.rememberedBrowsers} remembered browser(s), ${removed.challenges} pending challenge(s), ${removed.sessions} session(s) ` +
          `and ${removed.grants} relying-party grant(s); ` +
          'the user enrols again at the next sign-in',
      );
    });

  users
    .command('unlock <user>')
    .description("clear a user's second-factor failure locks and failed-password count")
    .action(async (email: string) => {
      const { unlockUser } = await import('../admin/operations.ts');
      const cleared = await asOperator(async ({ db, audit, accounts, locks }) =>
        unlockUser(db.prisma, audit, await locks(), await accounts.requireByLogin(email), { actor: CLI_ACTOR }),
      );
      console.log(
        cleared ? `unlocked ${email.trim().toLowerCase()} (cleared ${cleared} counter(s))` : `${email.trim().toLowerCase()} had no locks or failure counts`,
      );
    });

  registerImportCommand(users);
}

/** `users import`: many users from a CSV, JSON or JSON Lines file or a Keycloak realm export, with a report of the rows left out. */
function registerImportCommand(users: Command) {
  users
    .command('import <file>')
    .description(
      'add users from a CSV file with a header row, a JSON array or JSON Lines (columns: email, username, name, locale, phone, password or password_hash, ' +
        'email_verified, phone_verified, totp_secret, totp_digits, totp_period, totp_algorithm), or a Keycloak realm export (--from keycloak); ' +
        'existing users are left as they are, bad rows are reported by line and skipped',
    )
    .addOption(new Option('--from <source>', 'the file is an export of another system').choices(['keycloak']))
    .option('--allow-weak-hashes', 'import users whose password hash is weak (see README), without it: they set a new password')
    .option('--json', 'print the report as JSON')
    .action(async (file: string, options: { from?: 'keycloak'; allowWeakHashes?: boolean; json?: boolean }) => {
      try {
        await fs.promises.access(file, fs.constants.R_OK);
      } catch (error) {
        throw new CliError(`${file}: cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      }
      const { importUsers, streamImportFile, describeProblems, describeNotes } = await import('../accounts/import.ts');
      const { resolveMasterKey, SecretBox } = await import('../security/crypto.ts');
      const { sealTotpSecret } = await import('../factors/totp/index.ts');
      const { keycloakRealmRows } = await import('../accounts/import-keycloak.ts');
      const inFile = (error: unknown) => (isNyckelError(error) && error.code === 'invalid_input' ? new CliError(`${file}: ${error.message}`) : error);
      let rows;
      try {
        rows = options.from === 'keycloak' ? keycloakRealmRows(fs.readFileSync(file, 'utf8')) : streamImportFile(file);
      } catch (error) {
        throw inFile(error);
      }
      const progress = process.stderr.isTTY ? (seen: number) => process.stderr.write(`\r${seen} rows read`) : undefined;
      const report = await asOperator(({ config, db, audit, accounts }) =>
        importUsers(db.prisma, accounts, audit, rows, {
          actor: CLI_ACTOR,
          allowWeakHashes: options.allowWeakHashes,
          sealTotpSecret: sealTotpSecret(new SecretBox(resolveMasterKey(config))),
          onProgress: progress,
        }),
      ).catch((error: unknown) => {
        throw inFile(error);
      });
      if (progress) process.stderr.write('\n');
      if (options.json) {
        console.log(JSON.stringify(report, null, 2));
      } else {
        for (const problem of describeProblems(report)) console.log(`${file}: ${problem}`);
        for (const note of describeNotes(report)) console.log(`${file}: ${note}`);
        console.log(`${report.created} created, ${report.existing} already present (left unchanged), ${report.invalid} bad row(s) skipped`);
      }
      // Not a thrown error: the good rows were imported, and the report above says what was not.
      if (report.invalid > 0) process.exitCode = 1;
    });
}

export function registerAuditCommands(program: Command) {
  const audit = program.command('audit').description('the security audit log');
  audit
    .command('tail')
    .description('the latest security events, oldest first')
    .option('--user <user>', 'only the events of this user')
    .option('-n, --lines <count>', 'how many events', positiveCount, 50)
    .option('--json', 'one JSON object a line')
    .action(async (options: { user?: string; lines: number; json?: boolean }) => {
      const { auditTail } = await import('../admin/operations.ts');
      const events = await asOperator(async ({ db, accounts }) => {
        const userId = options.user !== undefined ? (await accounts.requireByLogin(options.user)).id : undefined;
        return auditTail(db.prisma, { userId, limit: options.lines });
      });
      for (const event of events) console.log(options.json ? JSON.stringify(event) : describeEvent(event));
    });
}
