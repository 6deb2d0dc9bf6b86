import { hkdfSync } from 'node:crypto';
import Provider, { errors, type Configuration } from 'oidc-provider';
import type { Accounts } from '../accounts/accounts.ts';
import { tokenEndpointAuthMethods, toProviderMetadata, usesDeviceFlow, type ClientsFile } from '../clients/clients-file.ts';
import type { Settings } from '../config/settings.ts';
import { storageFaultsAs503, temporarilyUnavailable, unavailableAs503 } from '../storage/adapter-faults.ts';
import { interactionPolicyWith, type NeedsSecondFactor } from './interaction-policy.ts';
import { existingGrant, firstPartyOfflineAccess } from './grants.ts';
import { isStorageUnavailable } from '../storage/unavailable.ts';
import type { PrismaClient } from '../storage/db.ts';
import type { SigningKeySet } from '../keys/signing-keys.ts';
import { acrValuesSupported } from '../factors/acr.ts';
import { singleUseDeviceConfirmation, singleUseResume } from './single-use-resume.ts';
import { adminResource } from '../admin/resource.ts';
import type { PageRenderer } from '../server/pages.ts';
import { publishFromIssuer } from './published.ts';
import { CODE_VERIFICATION_PATH, deviceFlow, deviceFlowAnswers } from './device-flow.ts';
import type { DeviceFlowLimits } from './device-flow-limits.ts';
import { frontchannelLogout } from './frontchannel-logout.ts';
import { FAPI2_CODE_TTL_SECONDS, isFapi2 } from '../clients/fapi-profile.ts';

export interface ProviderDependencies {
  settings: Settings;
  prisma: PrismaClient;
  accounts: Accounts;
  clients: ClientsFile;
  jwks: SigningKeySet;
  cookieKeys: string[];
  /** The pages oidc-provider shows (the command line's provider serves none: src/provider/command-line-logout.ts). */
  pages: Pick<PageRenderer, 'logoutConfirmation' | 'loggedOut' | 'protocolError'>;
  /** oidc-provider's storage: src/storage/oidc-adapter.ts, or with Redis src/storage/oidc-redis-adapter.ts. */
  adapter: NonNullable<Configuration['adapter']>;
  /** Whether the signed-in session must add a second factor for this authorization request. */
  needsSecondFactor?: NeedsSecondFactor;
  /** The device flow's guess and poll limits and its pages; absent, no device flow (the command line's provider). */
  device?: { limits: DeviceFlowLimits; pages: PageRenderer };
}

export const oidcScopes = ['openid', 'offline_access', 'profile', 'email', 'phone'];

/** The claims each OpenID scope gives (a claim asked for alone, by the claims parameter, is consented to as its scope). */
export const scopeClaims: Record<string, string[]> = {
  openid: ['sub', 'acr', 'amr', 'auth_time'],
  profile: ['name', 'preferred_username', 'locale', 'updated_at'],
  email: ['email', 'email_verified'],
  phone: ['phone_number', 'phone_number_verified'],
};

/** Where oidc-provider answers (its defaults, named here so the web server knows which paths are its). */
export const providerRoutes = {
  authorization: '/auth',
  backchannel_authentication: '/backchannel',
  code_verification: CODE_VERIFICATION_PATH,
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

/**
 * Every URL oidc-provider fetches (a client's jwks_uri, backchannel_logout_uri) is the operator's, from
 * the clients file: relying parties on an internal network (10.0.0.0/8, 192.168.0.0/16) are usual, so
 * oidc-provider's refusal of special-use addresses (meant for dynamically registered clients) is left out.
 */
export const relyingPartyFetch: NonNullable<Configuration['fetch']> = (url, init) => {
  const { dispatcher: _ssrfGuard, ...options } = (init ?? {}) as RequestInit & { dispatcher?: unknown };
  return globalThis.fetch(url, options);
};

/** oidc-provider's configuration: everything Nyckel changes from the library's defaults, in one place. */
export function providerConfiguration(deps: ProviderDependencies): Configuration {
  const { settings, accounts, clients, pages, device } = deps;
  // Nyckel's own admin API is one more resource server, always there (src/admin/resource.ts).
  const admin = adminResource(settings.issuer, settings.ttl.adminToken);
  const allResources = [...clients.resources, admin];
  const resourceScopes = allResources.flatMap((r) => r.scopes);
  const resources = new Map(allResources.map((r) => [r.identifier, r]));
  const firstParty = new Set(clients.clients.filter((c) => c.first_party).map((c) => c.client_id));
  const fapi2 = new Set(clients.clients.filter(isFapi2).map((c) => c.client_id));
  const isFapi2Client = (client?: { clientId: string }) => !!client && fapi2.has(client.clientId);

  // A resource server's own lifetime wins over the global one.
  const accessTokenTtl = (_ctx: unknown, token: { resourceServer?: { accessTokenTTL?: number } }) =>
    token.resourceServer?.accessTokenTTL ?? settings.ttl.accessToken;

  return {
    adapter: device
      ? singleUseDeviceConfirmation(singleUseResume(unavailableAs503(deps.adapter)), (id) => device.limits.claimConfirmation(id))
      : singleUseResume(unavailableAs503(deps.adapter)),
    clients: clients.clients.map(toProviderMetadata) as Configuration['clients'],
    jwks: { keys: deps.jwks.keys },
    cookies: {
      keys: deps.cookieKeys,
      names: { session: 'nyckel.session', interaction: 'nyckel.interaction', resume: 'nyckel.resume' },
      long: { httpOnly: true, sameSite: 'lax' },
      short: { httpOnly: true, sameSite: 'lax' },
    },
    claims: scopeClaims,
    // The ID token carries the granted scopes' claims (email, name…) too, as Keycloak's and most IdPs' do:
    // relying-party libraries (Auth.js by default) build their user from it and would find no email.
    conformIdTokenClaims: false,
    scopes: [...new Set([...oidcScopes, ...resourceScopes])],
    acrValues: acrValuesSupported,
    responseTypes: ['code'],
    // Discovery advertises what the clients file can configure, nothing more.
    clientAuthMethods: [...tokenEndpointAuthMethods],
    fetch: relyingPartyFetch,
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
      // FAPI 2.0 for the clients with security_profile: fapi2 (src/clients/fapi-profile.ts); others as before.
      fapi: { enabled: true, profile: (_ctx, client) => (isFapi2Client(client) ? '2.0' : undefined) },
      // An essential acr claim asks for step-up like acr_values (interaction-policy.ts).
      claimsParameter: { enabled: true },
      // DPoP (RFC 9449) for any client; required of those with dpop_bound_access_tokens in the clients file.
      // Proofs are signed with ES256, Ed25519 or EdDSA (oidc-provider's short default list, in discovery).
      // A proof's jti is remembered (ReplayDetection, in Redis or the database) so it is refused twice.
      dPoP: { enabled: true, allowReplay: false, nonceSecret: dpopNonceSecret(deps.cookieKeys), requireNonce: () => false },
      // Signing out at end_session posts a logout token to every app of the session with a backchannel_logout_uri
      // (and so does Nyckel when it ends sessions itself: logout-notices.ts). Front-channel logout is Nyckel's
      // own (frontchannel-logout.ts).
      backchannelLogout: { enabled: true },
      // RFC 8628 for TVs and CLIs, there (and in discovery) only when a client of the clients file uses it.
      deviceFlow: device ? deviceFlow(usesDeviceFlow(clients), device.pages, device.limits) : { enabled: false },
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
    loadExistingGrant: existingGrant(firstParty),
    // First-party clients get refresh tokens for offline_access without prompt=consent (grants.ts).
    extraParams: { scope: firstPartyOfflineAccess(firstParty) },
    // Public clients get a new refresh token on every use (the old one is then refused); confidential
    // clients once 70% of its lifetime has passed.
    rotateRefreshToken: (ctx) => {
      const { RefreshToken: refreshToken, Client: client } = ctx.oidc.entities;
      if (!refreshToken || !client) return false;
      // FAPI 2.0 (5.3.2.1): no rotation; its refresh tokens are bound to the client's private_key_jwt.
      if (isFapi2Client(client)) return false;
      if (client.clientAuthMethod === 'none') return true;
      return refreshToken.ttlPercentagePassed() >= 70;
    },
    ttl: {
      AccessToken: accessTokenTtl,
      AuthorizationCode: (_ctx, _code, client) =>
        isFapi2Client(client) ? Math.min(settings.ttl.authorizationCode, FAPI2_CODE_TTL_SECONDS) : settings.ttl.authorizationCode,
      ClientCredentials: accessTokenTtl,
      IdToken: settings.ttl.idToken,
      RefreshToken: settings.ttl.refreshToken,
      Interaction: settings.ttl.interaction,
      Session: settings.ttl.session,
      Grant: settings.ttl.refreshToken,
      DeviceCode: settings.ttl.deviceCode,
    },
    findAccount: async (_ctx, sub) => {
      // An id that is no user's (not even a uuid) finds no account; a store outage is a 503.
      const found = await accounts.findWithContact(sub).catch((error: unknown) => {
        if (isStorageUnavailable(error)) throw temporarilyUnavailable(error);
        return null;
      });
      if (!found || found.user.status !== 'active') return undefined;
      // The claims' contact details come with the account (one statement): a token request needs both.
      const { user, contact } = found;
      let claims: ReturnType<Accounts['claims']> | undefined;
      return { accountId: user.id, claims: () => (claims ??= storageFaultsAs503(() => accounts.claims(user, contact))) };
    },
    interactions: {
      url: (ctx, interaction) => {
        // A confirmed device code goes on to the sign-in: it named a device sign-in (device-flow-limits.ts).
        if (ctx.oidc.route === 'code_verification') device?.limits.codeFound(ctx);
        return `/interaction/${interaction.uid}`;
      },
      policy: interactionPolicyWith(deps.needsSecondFactor),
    },
    discovery: {
      ui_locales_supported: ['sv', 'da', 'en'],
      claims_locales_supported: ['sv', 'da', 'en'],
      service_documentation: `${settings.issuer}/`,
      frontchannel_logout_supported: true,
      frontchannel_logout_session_supported: true,
    },
    renderError: async (ctx, out, error) => pages.protocolError(ctx, out, error),
  };
}

/**
 * The key of DPoP nonces (a client whose proof is too old is sent one): derived from the installation's
 * cookie keys, kept sealed in the database, so every node issues and accepts the same nonces.
 */
function dpopNonceSecret(cookieKeys: string[]): Buffer {
  return Buffer.from(hkdfSync('sha256', cookieKeys[0], '', 'nyckel dpop nonce', 32));
}

export function createProvider(deps: ProviderDependencies & { pages: PageRenderer }): Provider {
  const provider = new Provider(deps.settings.issuer, providerConfiguration(deps));
  provider.proxy = deps.settings.trustProxy;
  publishFromIssuer(provider, deps.settings.issuer, deps.jwks.unpublished);
  if (deps.device) deviceFlowAnswers(provider, deps.device.limits, deps.device.pages);
  frontchannelLogout(provider, { issuer: deps.settings.issuer, endSessionPath: providerRoutes.end_session, clients: deps.clients, pages: deps.pages });
  return provider;
}
