import type { Command } from 'commander';
import { Accounts } from '../accounts/accounts.ts';
import { AuditLog } from '../accounts/audit.ts';
import type { Database } from '../storage/db.ts';
import { CLI_ACTOR, CliError, settings, withDatabase } from './common.ts';

const problems = {
  format: 'is not a personal identity number: YYYYMMDD-NNNC or YYMMDD-NNNC',
  date: 'has a birth date that does not exist',
  check_digit: 'has a wrong check digit (the last digit)',
} as const;

/**
 * `users set-personal-number` and `users remove-personal-number`: an operator binds the Swedish
 * personal identity number that a BankID sign-in of the user must carry (the user can also bind it
 * by signing once with BankID while signed in).
 */
export function registerBankIdCommands(program: Command) {
  const users = program.commands.find((command) => command.name() === 'users');
  if (!users) throw new Error('register the users commands first');

  users
    .command('set-personal-number <user> <number>')
    .description('bind the personal identity number (personnummer) a BankID sign-in of the user must carry; replaces an earlier one')
    .action(async (email: string, number: string) => {
      const { parsePersonalNumber } = await import('../factors/bankid/personal-number.ts');
      const parsed = parsePersonalNumber(number);
      if (!parsed.ok) throw new CliError(`personal number "${number}" ${problems[parsed.problem]}`);
      const config = settings();
      const masked = await withDatabase(config, async ({ prisma }: Database) => {
        const user = await new Accounts(prisma, new AuditLog(prisma), config.argon2).requireByLogin(email);
        const { bindPersonalNumber } = await import('../factors/bankid/binding.ts');
        const { resolveMasterKey, SecretBox } = await import('../security/crypto.ts');
        const box = new SecretBox(resolveMasterKey(config));
        return prisma.$transaction(async (tx) => {
          const row = await bindPersonalNumber(tx, box, user.id, parsed.value);
          const { masked } = row.data as { masked: string };
          await new AuditLog(tx).record('factor.enrolled', { userId: user.id, data: { factor: 'bankid', masked, actor: CLI_ACTOR } });
          return masked;
        });
      });
      console.log(`${email} signs in with the BankID of ${masked}`);
    });

  users
    .command('remove-personal-number <user>')
    .description('unbind the personal identity number: BankID is no longer a method of the user')
    .action(async (email: string) => {
      const config = settings();
      const count = await withDatabase(config, async ({ prisma }: Database) => {
        const user = await new Accounts(prisma, new AuditLog(prisma), config.argon2).requireByLogin(email);
        const { unbindPersonalNumber } = await import('../factors/bankid/binding.ts');
        return prisma.$transaction(async (tx) => {
          const removed = await unbindPersonalNumber(tx, user.id);
          if (removed > 0) await new AuditLog(tx).record('factor.removed', { userId: user.id, data: { factor: 'bankid', actor: CLI_ACTOR } });
          return removed;
        });
      });
      console.log(count > 0 ? `removed the personal number of ${email}` : `${email} had no personal number`);
    });
}
