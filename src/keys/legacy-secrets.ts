import { sealLegacyDeliveries } from '../delivery/sealed-body.ts';
import type { Logger } from '../logger.ts';
import type { SecretBox } from '../security/crypto.ts';
import type { PrismaClient } from '../storage/db.ts';
import { OidcAtRest, rekeyLegacyOidcModels } from '../storage/oidc-at-rest.ts';

/**
 * At start-up, before anything is served: what the 20261203091514_secrets_at_rest migration could
 * not do in SQL because it needs the master key. oidc-provider rows still keyed by their clear id are
 * re-keyed and sealed (sessions and refresh tokens keep working); mail still queued and the dev
 * outbox are sealed. Finds nothing to do after the first run.
 */
export async function sealLegacySecrets(prisma: PrismaClient, box: SecretBox, logger: Logger): Promise<void> {
  const rekeyed = await rekeyLegacyOidcModels(prisma, new OidcAtRest(box));
  const sealed = await sealLegacyDeliveries(prisma, box);
  if (rekeyed || sealed) logger.info({ oidcModels: rekeyed, deliveries: sealed }, 'secrets kept in clear by an earlier version are now hashed or sealed');
}
