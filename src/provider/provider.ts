import Provider, { errors, interactionPolicy, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { Accounts } from '../accounts/accounts.ts';
import { toProviderMetadata, type ClientsFile } from '../clients/clients-file.ts';
import type { Settings } from '../config/settings.ts';
import { storageFaultsAs503, temporarilyUnavailable, unavailableAs503 } from '../storage/adapter-faults.ts';
import { isStorageUnavailable } from '../storage/unavailable.ts';
import type { PrismaClient } from '../storage/db.ts';
import type { JWK } from 'jose';
import { acrValuesSupported } from '../factors/acr.ts';
import { singleUseResume } from './single-use-resume.ts';
import { adminResource } from '../admin/resource.ts';
import type { PageRenderer } from '../server/pages.ts';
import { publishFromIssuer } from './published.ts';

export interface ProviderDependencies {
  settings: Settings;
  prisma: PrismaClient;
  accounts: Accounts;
  clients: ClientsFile;
  jwks: { keys: JWK[] };
  cookieKeys: string[];
  pages: PageRenderer;
  /** oidc-provider's storage: src/storage/oidc-adapter.ts, or with Redis src/storage/oidc-redis-adapter.ts. */
  adapter: NonNullable<Configuration['adapter']>;
  /** Whether the signed-in session must add a second factor for this authorization request. */
  needsSecondFactor?: (ctx: KoaContextWithOIDC) => Promise<boolean>;
}

/**
 * A session whose account is gone or disabled asks for a fresh sign-in: oidc-provider would otherwise
 * go on without an account (findAccount found none) and fail with a 500 on the consent checks.
 */
const accountUnavailable = new interactionPolicy.Check('account_unavailable', 'the account of the session is no longer active', 'login_required', (ctx) =>
  ctx.oidc.session?.accountId && !ctx.oidc.account ? interactionPolicy.Check.REQUEST_PROMPT : interactionPolicy.Check.NO_NEED_TO_PROMPT,
);

/**
 * oidc-provider's prompts, with more reasons to ask for login: the session's account is no longer
 * active, or a second factor is missing.
 */
function interactionPolicyWith(needsSecondFactor: ProviderDependencies['needsSecondFactor']) {
  const policy = interactionPolicy.base();
  const loginChecks = policy.get('login')!.checks;
  loginChecks.splice(loginChecks.findIndex((check) => check.reason === 'no_session') + 1, 0, accountUnavailable);
  if (needsSecondFactor) {
    policy
      .get('login')!
      .checks.push(
        new interactionPolicy.Check('second_factor_required', 'a second factor is required', async (ctx) =>
          ctx.oidc.session?.accountId && (await storageFaultsAs503(() => needsSecondFactor(ctx)))
            ? interactionPolicy.Check.REQUEST_PROMPT
            : interactionPolicy.Check.NO_NEED_TO_PROMPT,
        ),
      );
  }
  return policy;
}

export const oidcScopes = ['openid', 'offline_access', 'profile', 'email', 'phone'];

/** Where oidc-provider answers (its defaults, named here so the web server knows which paths are its). */
export const providerRoutes = {
  authorization: '/auth',
  backchannel_authentication: '/backchannel',
  code_verification: '/device',
  device_authorization: '/device/auth',
  end_session: '/session/end',
  introspection: '/token/introspection',
  jwks: '/jwks',
  pushed_authorization_request: '/request',
  registration: '/reg',
  revocation: '/token/revocation',
  token: '/token',
  userinfo: '/me',
} as const;

/** Whether a path is oidc-provider's: one of its routes (or below one), or discovery. */
export function isProviderPath(path: string): boolean {
  return path.startsWith('/.well-known/') || Object.values(providerRoutes).some((route) => path === route || path.startsWith(`${route}/`));
}

/** oidc-provider's configuration: everything Nyckel changes from the library's defaults, in one place. */
export function providerConfiguration(deps: ProviderDependencies): Configuration {
  const { settings, accounts, clients, pages } = deps;
  // Nyckel's own admin API is one more resource server, always there (src/admin/resource.ts).
  const admin = adminResource(settings.issuer, settings.ttl.adminToken);
  const allResources = [...clients.resources, admin];
  const resourceScopes = allResources.flatMap((r) => r.scopes);
  const resources = new Map(allResources.map((r) => [r.identifier, r]));
  const firstParty = new Set(clients.clients.filter((c) => c.first_party).map((c) => c.client_id));

  // A resource server's own lifetime wins over the global one.
  const accessTokenTtl = (_ctx: unknown, token: { resourceServer?: { accessTokenTTL?: number } }) =>
    token.resourceServer?.accessTokenTTL ?? settings.ttl.accessToken;

  return {
    adapter: singleUseResume(unavailableAs503(deps.adapter)),
    clients: clients.clients.map(toProviderMetadata) as Configuration['clients'],
    jwks: deps.jwks,
    cookies: {
      keys: deps.cookieKeys,
      names: { session: 'nyckel.session', interaction: 'nyckel.interaction', resume: 'nyckel.resume' },
      long: { httpOnly: true, sameSite: 'lax' },
      short: { httpOnly: true, sameSite: 'lax' },
    },
    claims: {
      openid: ['sub', 'acr', 'amr', 'auth_time'],
      profile: ['name', 'preferred_username', 'locale', 'updated_at'],
      email: ['email', 'email_verified'],
      phone: ['phone_number', 'phone_number_verified'],
    },
    scopes: [...new Set([...oidcScopes, ...resourceScopes])],
    acrValues: acrValuesSupported,
    responseTypes: ['code'],
    routes: providerRoutes,
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      // A client may introspect and revoke only the tokens issued to it.
      introspection: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
      revocation: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
      userinfo: { enabled: true },
      pushedAuthorizationRequests: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => pages.logoutConfirmation(ctx, form),
        postLogoutSuccessSource: async (ctx) => pages.loggedOut(ctx),
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, indicator) => {
          const resource = resources.get(indicator);
          if (!resource) throw new errors.InvalidTarget('unknown resource indicator');
          return {
            scope: resource.scopes.join(' '),
            audience: resource.identifier,
            accessTokenTTL: resource.access_token_ttl ?? settings.ttl.accessToken,
            // Other APIs verify a JWT on their own; Nyckel's admin API looks its opaque tokens up, so
            // revocation takes effect at once.
            ...(resource === admin
              ? { accessTokenFormat: 'opaque' as const }
              : { accessTokenFormat: 'jwt' as const, jwt: { sign: { alg: 'ES256' as const } } }),
          };
        },
      },
    },
    // First-party clients (first_party: true) get their grant without a consent round trip; others
    // reuse the grant of the session, and the consent page asks for anything missing.
    // A grant revoked under a session that stays (a password change) is replaced like a missing one.
    loadExistingGrant: async (ctx) => {
      const { oidc } = ctx;
      const consented = oidc.result?.consent?.grantId;
      if (consented) return oidc.provider.Grant.find(consented);
      const sessionGrantId = oidc.session!.grantIdFor(oidc.client!.clientId);
      const sessionGrant = sessionGrantId ? await oidc.provider.Grant.find(sessionGrantId) : undefined;
      if (sessionGrant) return sessionGrant;
      if (!firstParty.has(oidc.client!.clientId) || !oidc.session?.accountId) return undefined;
      const grant = new oidc.provider.Grant({ clientId: oidc.client!.clientId, accountId: oidc.session.accountId });
      grant.addOIDCScope([...oidc.requestParamOIDCScopes].join(' '));
      if (oidc.requestParamClaims?.size) grant.addOIDCClaims([...oidc.requestParamClaims]);
      const requested = oidc.requestParamScopes;
      for (const [indicator, server] of Object.entries(oidc.resourceServers ?? {})) {
        const scopes = (server.scope ?? '').split(' ').filter((scope) => requested.has(scope));
        if (scopes.length) grant.addResourceScope(indicator, scopes.join(' '));
      }
      await grant.save();
      return grant;
    },
    // Public clients get a new refresh token on every use (the old one is then refused); confidential
    // clients once 70% of its lifetime has passed.
    rotateRefreshToken: (ctx) => {
      const { RefreshToken: refreshToken, Client: client } = ctx.oidc.entities;
      if (!refreshToken || !client) return false;
      if (client.clientAuthMethod === 'none') return true;
      return refreshToken.ttlPercentagePassed() >= 70;
    },
    ttl: {
      AccessToken: accessTokenTtl,
      AuthorizationCode: settings.ttl.authorizationCode,
      ClientCredentials: accessTokenTtl,
      IdToken: settings.ttl.idToken,
      RefreshToken: settings.ttl.refreshToken,
      Interaction: settings.ttl.interaction,
      Session: settings.ttl.session,
      Grant: settings.ttl.refreshToken,
    },
    findAccount: async (_ctx, sub) => {
      // An id that is no user's (not even a uuid) finds no account; a store outage is a 503.
      const user = await accounts.findById(sub).catch((error: unknown) => {
        if (isStorageUnavailable(error)) throw temporarilyUnavailable(error);
        return null;
      });
      if (!user || user.status !== 'active') return undefined;
      // Read the claims only when oidc-provider asks for them (ID token, userinfo): most lookups, such as
      // the session check of every authorization request, need only the account itself.
      let claims: ReturnType<Accounts['claims']> | undefined;
      return { accountId: user.id, claims: () => (claims ??= storageFaultsAs503(() => accounts.claims(user))) };
    },
    interactions: {
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
      policy: interactionPolicyWith(deps.needsSecondFactor),
    },
    discovery: {
      ui_locales_supported: ['sv', 'da', 'en'],
      claims_locales_supported: ['sv', 'da', 'en'],
      service_documentation: `${settings.issuer}/`,
    },
    renderError: async (ctx, out, error) => pages.protocolError(ctx, out, error),
  };
}

export function createProvider(deps: ProviderDependencies): Provider {
  const provider = new Provider(deps.settings.issuer, providerConfiguration(deps));
  provider.proxy = deps.settings.trustProxy;
  publishFromIssuer(provider, deps.settings.issuer);
  return provider;
}
