import type { Command } from 'commander';
import { AuditLog } from '../accounts/audit.ts';
import { loadSigningKeys, rotateSigningKeys } from '../keys/signing-keys.ts';
import { newMasterKey, resolveMasterKey, SecretBox } from '../security/crypto.ts';
import { CLI_ACTOR, CliError, settings, withDatabase } from './common.ts';
import { ClientsFileError, readClientsFile } from '../clients/clients-file.ts';

function readResourceTtls(file: string): number[] {
  try {
    return readClientsFile(file).resources.flatMap((r) => (r.access_token_ttl ? [r.access_token_ttl] : []));
  } catch (error) {
    if (error instanceof ClientsFileError) {
      throw new CliError(`${error.message}\n(keys rotate reads the clients file for the resource servers' token lifetimes)`);
    }
    throw error;
  }
}

export function registerKeyCommands(program: Command) {
  const keys = program.command('keys').description('signing keys and the master key');

  keys
    .command('rotate')
    .description(
      'add new RS256 and ES256 signing keys; the current ones stay published until the tokens they signed expire, and verify id_token_hint for the session lifetime',
    )
    .action(async () => {
      const config = settings();
      const box = new SecretBox(resolveMasterKey(config));
      // Published until the longest-lived token a retired key may have signed has expired: ID tokens,
      // access tokens, and the JWT access tokens of resource servers with a lifetime of their own.
      const resourceTtls = readResourceTtls(config.clientsFile);
      const publishSeconds = Math.max(config.ttl.idToken, config.ttl.accessToken, ...resourceTtls);
      const result = await withDatabase(config, async (db) => {
        // Keys sealed with another master key than the server's would break it: check this one opens them.
        try {
          await loadSigningKeys(db.prisma, box);
        } catch (error) {
          // AES-GCM's authentication failure; anything else (the database) is reported as it is.
          if (!/unable to authenticate data|unknown secret format/.test((error as Error).message)) throw error;
          throw new CliError(
            "the signing keys in the database cannot be decrypted with this master key (is NYCKEL_MASTER_KEY the server's?); nothing was changed",
          );
        }
        const rotated = await rotateSigningKeys(db.prisma, box, publishSeconds);
        await new AuditLog(db.prisma).record('keys.rotated', {
          data: { actor: CLI_ACTOR, added: rotated.added, retired: rotated.retired, publishUntil: rotated.publishUntil.toISOString() },
        });
        return rotated;
      });
      console.log(`new signing keys: ${result.added.join(', ')}`);
      if (result.retired.length > 0) {
        console.log(`retired: ${result.retired.join(', ')} (published until ${result.publishUntil.toISOString()})`);
      }
      console.log(
        `Running servers switch to the new keys at their next sweep (every ${config.sweepIntervalSeconds} s), at once on SIGHUP (kill -HUP <pid>), or on restart.`,
      );
    });

  keys
    .command('master')
    .description('print a new random master key for NYCKEL_MASTER_KEY (reads no settings)')
    .action(() => {
      console.log(newMasterKey());
      console.error('Set it as NYCKEL_MASTER_KEY and keep it secret. It encrypts the secrets in the database: changing it later makes them unreadable.');
    });
}
