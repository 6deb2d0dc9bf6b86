import type Provider from 'oidc-provider';
import type { Accounts } from './accounts/accounts.ts';
import type { ClientsFile } from './clients/clients-file.ts';
import type { ClientDirectory } from './clients/directory.ts';
import type { Settings } from './config/settings.ts';
import { loadSigningKeys, type SigningKeySet } from './keys/signing-keys.ts';
import type { Logger } from './logger.ts';
import { logProviderErrors } from './observability/provider-errors.ts';
import { observeProvider } from './observability/provider-metrics.ts';
import type { Metrics } from './observability/metrics.ts';
import type { DeviceFlowLimits } from './provider/device-flow-limits.ts';
import { createProvider } from './provider/provider.ts';
import type { SecretBox } from './security/crypto.ts';
import type { PageRenderer } from './server/pages.ts';
import type { Database } from './storage/db.ts';
import { createOidcAdapter } from './storage/oidc-adapter.ts';
import { OidcAtRest } from './storage/oidc-at-rest.ts';
import { createHybridOidcAdapter } from './storage/oidc-redis-adapter.ts';
import type { RedisStore } from './storage/redis.ts';

/** oidc-provider as built from the clients and signing keys in force; rebuilt when either changes. */
export class ProviderHolder {
  current!: Provider;
  private publishedKids = '';

  constructor(
    private readonly prisma: Database['prisma'],
    private readonly box: SecretBox,
    private readonly logger: Logger,
    private readonly build: (jwks: SigningKeySet) => Provider,
    /** How long a retired key still verifies `id_token_hint`: the session lifetime. */
    private readonly hintSeconds: number,
  ) {}

  private static fingerprint(jwks: SigningKeySet): string {
    return jwks.keys.map((k) => (jwks.unpublished.includes(k.kid!) ? `(${k.kid})` : k.kid)).join(' ');
  }

  async rebuild(): Promise<void> {
    const jwks = await loadSigningKeys(this.prisma, this.box, { hintSeconds: this.hintSeconds });
    this.current = this.build(jwks);
    this.publishedKids = ProviderHolder.fingerprint(jwks);
  }

  /** A clients file read again: the previous one stays in force when no provider can be built from the new one. */
  async swapClients(clients: ClientDirectory, file: ClientsFile): Promise<void> {
    const previous = clients.file;
    clients.replace(file);
    try {
      await this.rebuild();
    } catch (error) {
      clients.replace(previous);
      throw error;
    }
  }

  /** Keys rotated by `nyckel keys rotate` (on any node) are picked up at the next sweep. */
  async refreshKeysIfChanged(): Promise<void> {
    const kids = ProviderHolder.fingerprint(await loadSigningKeys(this.prisma, this.box, { hintSeconds: this.hintSeconds }));
    if (kids === this.publishedKids) return;
    await this.rebuild();
    this.logger.info({ kids }, 'signing keys changed; now publishing the new set');
  }
}

/** oidc-provider over Nyckel's storage, rebuilt when the signing keys or the clients change. */
export function providerHolder(deps: {
  settings: Settings;
  prisma: Database['prisma'];
  box: SecretBox;
  redis: RedisStore | undefined;
  logger: Logger;
  metrics: Metrics;
  accounts: Accounts;
  clients: ClientDirectory;
  cookieKeys: string[];
  pages: PageRenderer;
  needsSecondFactor: Parameters<typeof createProvider>[0]['needsSecondFactor'];
  deviceLimits: DeviceFlowLimits;
}): ProviderHolder {
  const { settings, prisma, box, redis, logger, metrics } = deps;
  const oidcAtRest = new OidcAtRest(box);
  const adapter = redis ? createHybridOidcAdapter(prisma, redis.client, oidcAtRest) : createOidcAdapter(prisma, { atRest: oidcAtRest });
  const build = (jwks: Parameters<typeof createProvider>[0]['jwks']) => {
    const { accounts, clients, cookieKeys, pages, needsSecondFactor, deviceLimits } = deps;
    const built = createProvider({
      settings,
      prisma,
      accounts,
      clients: clients.file,
      jwks,
      cookieKeys,
      pages,
      needsSecondFactor,
      adapter,
      device: { limits: deviceLimits, pages },
    });
    observeProvider(built, metrics);
    logProviderErrors(built, logger.child({ component: 'oidc-provider' }));
    return built;
  };
  return new ProviderHolder(prisma, box, logger, build, settings.ttl.session);
}
