import type { Command } from 'commander';
import { Accounts, accountName, emailSchema, phoneSchema } from '../accounts/accounts.ts';
import { AuditLog } from '../accounts/audit.ts';
import type { Settings } from '../config/settings.ts';
import type { Database } from '../storage/db.ts';
import { registerOperatorUserCommands } from './operator.ts';
import { registerAddAndInvite } from './user-add.ts';
import { registerPersonalDataCommands } from './users-gdpr.ts';
import { cliAccounts, CLI_ACTOR, lazyRedis, parseValue, readPasswordFromStdin, settings, table, withDatabase } from './common.ts';

/** Runs `work` with the accounts of the configured database (and Redis, if a revocation needs it). */
function withAccounts<T>(config: Settings, work: (accounts: Accounts) => Promise<T>): Promise<T> {
  return withDatabase(config, async (db: Database) => {
    const redis = await lazyRedis(config);
    try {
      return await work(cliAccounts(db, config, redis));
    } finally {
      await redis.close();
    }
  });
}

const timestamp = (date: Date) => date.toISOString().replace(/\.\d{3}Z$/, 'Z');

export function registerUserCommands(program: Command) {
  const users = program.command('users').description('manage user accounts (<user>: a sign-in address, a user name or an id)');

  registerAddAndInvite(users);

  users
    .command('list')
    .description('list users')
    .option('--json', 'print JSON instead of a table')
    .action(async (options: { json?: boolean }) => {
      const list = await withAccounts(settings(), (accounts) => accounts.list());
      if (options.json) {
        const out = list.map((user) => ({
          id: user.id,
          email: user.email,
          username: user.username,
          name: user.name,
          status: user.status,
          locale: user.locale,
          phones: user.phones.map((phone) => phone.e164),
          createdAt: user.createdAt.toISOString(),
          updatedAt: user.updatedAt.toISOString(),
          passwordChangedAt: user.passwordChangedAt.toISOString(),
        }));
        console.log(JSON.stringify(out, null, 2));
        return;
      }
      if (list.length === 0) {
        console.log('No users. Add one with: nyckel users add --email <email> [--username <name>] --password-stdin');
        return;
      }
      const rows = list.map((user) => [user.username ?? '-', user.email ?? '-', user.name ?? '-', user.status, user.locale ?? '-', timestamp(user.createdAt)]);
      console.log(table(['USERNAME', 'EMAIL', 'NAME', 'STATUS', 'LOCALE', 'CREATED'], rows));
    });

  for (const [name, status] of [
    ['disable', 'disabled'],
    ['enable', 'active'],
  ] as const) {
    users
      .command(`${name} <user>`)
      .description(status === 'disabled' ? 'refuse sign-in and the sessions and tokens the user has' : 'allow a disabled user to sign in again')
      .action(async (email: string) => {
        const message = await withAccounts(settings(), async (accounts) => {
          const user = await accounts.requireByLogin(email);
          if (user.status === status) return `${accountName(user)} is already ${status}`;
          await accounts.setStatus(user, status, { actor: CLI_ACTOR });
          return `${name}d ${accountName(user)}`;
        });
        console.log(message);
      });
  }

  users
    .command('set-password <user>')
    .description("replace a user's password (their sessions end and relying parties' tokens are revoked)")
    .requiredOption('--password-stdin', 'read the password from stdin (one trailing newline is dropped)')
    .action(async (email: string) => {
      const config = settings();
      const password = await readPasswordFromStdin();
      const user = await withAccounts(config, async (accounts) => accounts.setPassword(await accounts.requireByLogin(email), password, { actor: CLI_ACTOR }));
      console.log(`password set for ${accountName(user)}`);
    });

  users
    .command('set-username <user> <username>')
    .description('give a user a sign-in user name (or take it away with --remove instead of a name)')
    .action(async (who: string, username: string) => {
      const user = await withAccounts(settings(), async (accounts) =>
        accounts.setUsername(await accounts.requireByLogin(who), username === '--remove' ? null : username, { actor: CLI_ACTOR }),
      );
      console.log(user.username ? `${who} now signs in as ${user.username}` : `${who} has no user name now`);
    });

  registerContactCommands(users);

  users
    .command('forget-browsers <user>')
    .description('revoke every "don\'t ask again in this browser" of a user')
    .action(async (email: string) => {
      const count = await withAccounts(settings(), async (accounts) => accounts.forgetBrowsers(await accounts.requireByLogin(email), { actor: CLI_ACTOR }));
      console.log(`revoked ${count} remembered browser(s) of ${email}`);
    });

  users
    .command('recovery-codes <user>')
    .description('how many unused recovery codes a user has; with --regenerate, new codes replace all earlier ones and are printed (once)')
    .option('--regenerate', 'make new codes (the earlier ones stop working)')
    .action(async (email: string, options: { regenerate?: boolean }) => {
      const config = settings();
      await withDatabase(config, async ({ prisma }: Database) => {
        const user = await new Accounts(prisma, new AuditLog(prisma), config.argon2).requireByLogin(email);
        const { replaceRecoveryCodes, unusedRecoveryCodes } = await import('../factors/recovery-code/index.ts');
        if (!options.regenerate) {
          console.log(`${email} has ${await unusedRecoveryCodes(prisma, user.id)} unused recovery code(s)`);
          return;
        }
        const { resolveMasterKey, SecretBox } = await import('../security/crypto.ts');
        const box = new SecretBox(resolveMasterKey(config));
        const codes = await prisma.$transaction((tx) => replaceRecoveryCodes(tx, box, user.id, config.recoveryCodes));
        await new AuditLog(prisma).record('recovery-codes.generated', { userId: user.id, data: { count: codes.length, actor: CLI_ACTOR } });
        console.log(`new recovery codes for ${email} (the earlier ones no longer work; give these to the user and do not keep them):`);
        console.log(codes.join('\n'));
      });
    });

  registerOperatorUserCommands(users);
  registerPersonalDataCommands(users);
}

/** A user's addresses and numbers: list, add, remove, mark verified. */
function registerContactCommands(users: Command) {
  users
    .command('emails <user>')
    .description("list a user's contact addresses")
    .action(async (email: string) => {
      const rows = await withAccounts(settings(), async (accounts) => accounts.emails((await accounts.requireByLogin(email)).id));
      console.log(
        table(
          ['ADDRESS', 'VERIFIED', 'ADDED'],
          rows.map((r) => [r.address, r.verifiedAt ? timestamp(r.verifiedAt) : 'no', timestamp(r.createdAt)]),
        ),
      );
    });

  users
    .command('add-email <user> <address>')
    .description('add a contact address that can receive sign-in links and codes once verified')
    .option('--verified', 'the operator vouches for the address (otherwise the user proves it with a code at sign-in)')
    .action(async (email: string, address: string, options: { verified?: boolean }) => {
      const config = settings();
      parseValue('address', emailSchema, address);
      await withAccounts(config, async (accounts) =>
        accounts.addEmail(await accounts.requireByLogin(email), address, {
          verified: options.verified,
          maxAddresses: config.maxContactEmails,
          actor: CLI_ACTOR,
        }),
      );
      console.log(`added ${address.trim().toLowerCase()} to ${email}${options.verified ? ' (verified)' : ' (not verified yet)'}`);
    });

  users
    .command('remove-email <user> <address>')
    .description('remove a contact address')
    .action(async (email: string, address: string) => {
      await withAccounts(settings(), async (accounts) => accounts.removeEmail(await accounts.requireByLogin(email), address, { actor: CLI_ACTOR }));
      console.log(`removed ${address.trim().toLowerCase()} from ${email}`);
    });

  users
    .command('verify-email <user> <address>')
    .description('mark a contact address as verified')
    .action(async (email: string, address: string) => {
      await withAccounts(settings(), async (accounts) => accounts.verifyEmail(await accounts.requireByLogin(email), address, { actor: CLI_ACTOR }));
      console.log(`verified ${address.trim().toLowerCase()} for ${email}`);
    });

  users
    .command('add-phone <user> <number>')
    .description('add a mobile number (international form, e.g. +46701234567) that can receive SMS codes once verified')
    .option('--verified', 'the operator vouches for the number (otherwise it cannot receive codes until verify-phone)')
    .action(async (email: string, number: string, options: { verified?: boolean }) => {
      const e164 = parseValue('number', phoneSchema, number);
      await withAccounts(settings(), async (accounts) =>
        accounts.addPhone(await accounts.requireByLogin(email), e164, { verified: options.verified, actor: CLI_ACTOR }),
      );
      console.log(`added ${e164} to ${email}${options.verified ? ' (verified)' : ' (not verified yet)'}`);
    });

  users
    .command('remove-phone <user> <number>')
    .description('remove a mobile number')
    .action(async (email: string, number: string) => {
      const e164 = parseValue('number', phoneSchema, number);
      await withAccounts(settings(), async (accounts) => accounts.removePhone(await accounts.requireByLogin(email), e164, { actor: CLI_ACTOR }));
      console.log(`removed ${e164} from ${email}`);
    });

  users
    .command('verify-phone <user> <number>')
    .description('mark a mobile number as verified: it can then receive sign-in codes by SMS')
    .action(async (email: string, number: string) => {
      const e164 = parseValue('number', phoneSchema, number);
      await withAccounts(settings(), async (accounts) => accounts.verifyPhone(await accounts.requireByLogin(email), e164, { actor: CLI_ACTOR }));
      console.log(`verified ${e164} for ${email}`);
    });
}
