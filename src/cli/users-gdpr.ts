import type { Command } from 'commander';
import { Accounts, accountName } from '../accounts/accounts.ts';
import { AuditLog } from '../accounts/audit.ts';
import { cliAccounts, CLI_ACTOR, CliError, lazyRedis, settings, withDatabase } from './common.ts';

/**
 * `users export` and `users delete`: a user's data for the user (GDPR articles 15 and 20, the same
 * JSON as "Download my data") and erasing an account at once (article 17; src/accounts/erase.ts).
 */
export function registerPersonalDataCommands(users: Command) {
  users
    .command('export <user>')
    .description('print everything kept about a user as JSON (for the user: no password hash, factor secret or token)')
    .action(async (who: string) => {
      const config = settings();
      const data = await withDatabase(config, async (db) => {
        const user = await new Accounts(db.prisma, new AuditLog(db.prisma), config.argon2).requireByLogin(who);
        const { exportPersonalData } = await import('../accounts/personal-data.ts');
        const exported = await exportPersonalData(db.prisma, user);
        await new AuditLog(db.prisma).record('user.data_exported', { userId: user.id, data: { actor: CLI_ACTOR } });
        return exported;
      });
      console.log(JSON.stringify(data, null, 2));
    });

  users
    .command('delete <user>')
    .description('erase a user at once: the account, every method, session, grant, token and mail to them; audit events are kept pseudonymised')
    .requiredOption('--reason <text>', 'why (kept in the audit log)')
    .action(async (who: string, options: { reason: string }) => {
      const config = settings();
      const reason = options.reason.trim();
      if (!reason) throw new CliError('--reason must say why (it is kept in the audit log)');
      const message = await withDatabase(config, async (db) => {
        const redis = await lazyRedis(config);
        try {
          const accounts = cliAccounts(db, config, redis);
          const user = await accounts.requireByLogin(who);
          const [{ eraseUser }, { resolveMasterKey, SecretBox }] = await Promise.all([import('../accounts/erase.ts'), import('../security/crypto.ts')]);
          const warn = (_details: Record<string, unknown>, text: string) => console.error(`nyckel: warning: ${text}`);
          const erasure = {
            prisma: db.prisma,
            box: new SecretBox(resolveMasterKey(config)),
            audit: new AuditLog(db.prisma),
            revokeElsewhere: accounts.revokeElsewhere,
            redis: redis.client,
            warn,
          };
          const report = await eraseUser(erasure, user.id, { actor: CLI_ACTOR, reason });
          return `erased ${accountName(user)}: ${report.sessionsEnded} session(s) ended, ${report.grantsRevoked} grant(s) revoked, ${report.auditEventsPseudonymised} audit event(s) kept as ${report.subject}`;
        } finally {
          await redis.close();
        }
      });
      console.log(message);
    });
}
