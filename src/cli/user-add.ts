import { Option, type Command } from 'commander';
import { accountName, emailSchema, phoneSchema, supportedLocales, usernameSchema, type Accounts, type Locale } from '../accounts/accounts.ts';
import { AuditLog } from '../accounts/audit.ts';
import { Invitations } from '../accounts/invitations.ts';
import type { Settings } from '../config/settings.ts';
import type { User } from '../generated/prisma/client.ts';
import type { Database } from '../storage/db.ts';
import { assertAcceptablePassword, CliError, cliAccounts, CLI_ACTOR, lazyRedis, parseValue, readPasswordFromStdin, settings, withDatabase } from './common.ts';

interface NewUserOptions {
  email?: string;
  username?: string;
  name?: string;
  phone?: string;
  locale?: Locale;
  passwordStdin?: boolean;
}

/** The invitations of the configured database; the mail is queued for the running server to send. */
async function cliInvitations(db: Database, config: Settings, revokeElsewhere: Accounts['revokeElsewhere']): Promise<Invitations> {
  const { resolveMasterKey, SecretBox } = await import('../security/crypto.ts');
  const { enqueueMail } = await import('../delivery/dispatcher.ts');
  const { Branding } = await import('../branding/brand.ts');
  const { signMail } = await import('../branding/mail-branding.ts');
  const box = new SecretBox(resolveMasterKey(config));
  // An invitation is the service's own mail: no client's brand.
  const branding = new Branding(config.brand, { get: () => undefined, file: { clients: [] } });
  return new Invitations(
    db.prisma,
    box,
    new AuditLog(db.prisma),
    { enqueue: (tx, mail) => enqueueMail(tx, box, signMail(branding, mail)), kick: () => {} },
    { issuer: config.issuer, ttlSeconds: config.signIn.invitationTtl, defaultLocale: config.defaultLocale, service: config.brand.name },
    revokeElsewhere,
  );
}

/** Accounts and invitations of the configured database, for one command. */
async function withUsers<T>(config: Settings, work: (accounts: Accounts, invitations: Invitations) => Promise<T>): Promise<T> {
  return withDatabase(config, async (db: Database) => {
    const redis = await lazyRedis(config);
    try {
      const accounts = cliAccounts(db, config, redis);
      return await work(accounts, await cliInvitations(db, config, accounts.revokeElsewhere));
    } finally {
      await redis.close();
    }
  });
}

function names(options: NewUserOptions) {
  const email = options.email === undefined ? undefined : parseValue('email', emailSchema, options.email);
  const username = options.username === undefined ? undefined : parseValue('username', usernameSchema, options.username);
  if (!email && !username) throw new CliError('give --email, --username or both');
  if (options.phone !== undefined) parseValue('phone', phoneSchema, options.phone);
  return { email, username };
}

const invited = (user: User, sent: { to: string; expiresAt: Date }) =>
  `invitation for ${accountName(user)} sent to ${sent.to}; the link works once, until ${sent.expiresAt.toISOString().replace(/\.\d{3}Z$/, 'Z')}`;

function newUserOptions(command: Command): Command {
  return command
    .option('--email <email>', 'sign-in email address')
    .option('--username <name>', 'sign-in user name (case-insensitive; no "@" or spaces), e.g. 202100083755')
    .option('--name <name>', 'display name')
    .option('--phone <phone>', 'phone number in international form, e.g. +46701234567')
    .addOption(new Option('--locale <locale>', 'preferred language').choices(supportedLocales));
}

/** `users add` (with a password, or by invitation) and `users invite`. */
export function registerAddAndInvite(users: Command) {
  newUserOptions(
    users
      .command('add')
      .description(
        'add a user (the email address is taken as verified); a user needs --email, --username or both; without --password-stdin, an invitation is mailed',
      ),
  )
    .option('--password-stdin', 'read the password from stdin (one trailing newline is dropped)')
    .action(async (options: NewUserOptions) => {
      const config = settings();
      const { email, username } = names(options);
      const password = options.passwordStdin ? await readPasswordFromStdin() : undefined;
      if (password !== undefined) assertAcceptablePassword(password, { email, username });
      const lines = await withUsers(config, async (accounts, invitations) => {
        const user = await accounts.create(
          { email, username, password, name: options.name, phone: options.phone, locale: options.locale },
          { actor: CLI_ACTOR },
        );
        const added = `added ${accountName(user)} (id ${user.id})`;
        return password !== undefined ? [added] : [added, invited(user, await invitations.invite(user, { actor: CLI_ACTOR }))];
      });
      console.log(lines.join('\n'));
    });

  newUserOptions(
    users.command('invite').description('mail a user a link to choose their password (a new user is added first); inviting again replaces the earlier link'),
  ).action(async (options: NewUserOptions) => {
    const config = settings();
    const { email, username } = names(options);
    const line = await withUsers(config, async (accounts, invitations) => {
      const existing = (username ? await accounts.findByLogin(username, 'username') : null) ?? (email ? await accounts.findByEmail(email) : null);
      const user =
        existing ?? (await accounts.create({ email, username, name: options.name, phone: options.phone, locale: options.locale }, { actor: CLI_ACTOR }));
      return invited(user, await invitations.invite(user, { actor: CLI_ACTOR }));
    });
    console.log(line);
  });
}
