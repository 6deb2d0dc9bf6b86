import { decodeJwt } from 'jose';
import type { Configuration, KoaContextWithOIDC } from 'oidc-provider';

type Client = NonNullable<KoaContextWithOIDC['oidc']['client']>;

/**
 * First-party clients (first_party: true) get their grant without a consent round trip; others
 * reuse the grant of the session, and the consent page asks for anything missing.
 * A grant revoked under a session that stays (a password change) is replaced like a missing one.
 */
export function existingGrant(firstParty: ReadonlySet<string>): NonNullable<Configuration['loadExistingGrant']> {
  return async (ctx) => {
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
  };
}

/** The scope the relying party sent, before oidc-provider dropped offline_access (pushed or not). */
function scopeAsSent(ctx: KoaContextWithOIDC): string {
  const pushed = (ctx.oidc.entities as { PushedAuthorizationRequest?: { request?: string } }).PushedAuthorizationRequest?.request;
  const body = (ctx.oidc as { body?: Record<string, unknown> }).body;
  const sent = pushed ? decodeJwt(pushed).scope : (body?.scope ?? ctx.query.scope);
  return typeof sent === 'string' ? sent : '';
}

/**
 * oidc-provider keeps `offline_access` only with `prompt=consent` (OIDC Core 11). A first-party client
 * asks no consent, so that condition is met by its being first-party, as with most identity providers:
 * its `offline_access` is put back when the client may have it (the scope and the refresh_token grant
 * in the clients file). Third-party clients still need `prompt=consent`. Run as the validator of the
 * `scope` parameter, which oidc-provider calls after its own scope checks.
 */
export function firstPartyOfflineAccess(firstParty: ReadonlySet<string>) {
  return async (ctx: KoaContextWithOIDC, scope: string | undefined, client?: Client): Promise<void> => {
    if (!client || !firstParty.has(client.clientId)) return;
    const kept = scope ? scope.split(' ') : [];
    if (kept.includes('offline_access') || !scopeAsSent(ctx).split(' ').includes('offline_access')) return;
    if (!client.grantTypeAllowed('refresh_token') || !client.scope?.split(' ').includes('offline_access')) return;
    ctx.oidc.params!.scope = [...kept, 'offline_access'].join(' ');
  };
}
