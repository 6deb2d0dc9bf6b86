import crypto from 'node:crypto';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { pinnedToIssuer } from '../server/issuer-origin.ts';

/** Discovery changes only when the clients file is reloaded: relying parties may keep it five minutes. */
export const DISCOVERY_CACHE_CONTROL = 'public, max-age=300';
/**
 * A rotated key signs from the next sweep on (NYCKEL_SWEEP_INTERVAL), so no cache may serve an older
 * key set without asking: `no-cache` with an ETag, which makes asking again a cheap 304.
 */
export const JWKS_CACHE_CONTROL = 'public, no-cache';

/**
 * What oidc-provider publishes is named after ISSUER only (see pinnedToIssuer), and discovery and the
 * JWKS say how long they may be cached. `unpublished`: keys oidc-provider holds only to verify
 * `id_token_hint` (retired past their publication), left out of /jwks.
 */
export function publishFromIssuer(provider: Provider, issuer: string, unpublished: readonly string[] = []): void {
  provider.use(pinnedToIssuer(issuer));
  provider.use(async (ctx, next) => {
    await next();
    const route = (ctx as KoaContextWithOIDC).oidc?.route;
    if (ctx.status !== 200 || (route !== 'discovery' && route !== 'jwks')) return;
    if (route === 'discovery') return void ctx.set('Cache-Control', DISCOVERY_CACHE_CONTROL);
    // oidc-provider answers with a new { keys } object each time: filtering it keeps its content type.
    const jwks = ctx.body as { keys: Array<{ kid?: string }> };
    jwks.keys = jwks.keys.filter((key) => !unpublished.includes(key.kid!));
    ctx.set('Cache-Control', JWKS_CACHE_CONTROL);
    ctx.set('ETag', `"${crypto.createHash('sha256').update(JSON.stringify(ctx.body)).digest('base64url')}"`);
    if (ctx.fresh) {
      ctx.status = 304;
      ctx.body = null;
    }
  });
}
