import crypto from 'node:crypto';
import Router from '@koa/router';
import type { Context } from 'koa';
import type * as oidc from 'openid-client';
import type { PageRenderer } from './server/pages.ts';

// Loaded at the demo's first sign-in, not at start.
const openidClient = () => import('openid-client');

/**
 * A small relying party served at /demo while NYCKEL_DEMO is on, so that a fresh install can be
 * tried in a browser: it is an ordinary OIDC client (openid-client, code + PKCE) of client `demo`.
 * Its sessions live in memory; it is a demonstration, not part of the identity provider.
 */
export function demoRoutes(issuer: string, pages: PageRenderer): Router {
  const router = new Router({ prefix: '/demo' });
  const pending = new Map<string, { verifier: string; state: string; nonce: string }>();
  const signedIn = new Map<string, { claims: Record<string, unknown>; idToken: string }>();
  let config: Promise<oidc.Configuration> | undefined;
  const configuration = () => {
    config ??= openidClient()
      .then((client) =>
        client.discovery(new URL(issuer), 'demo', undefined, client.None(), {
          execute: issuer.startsWith('http:') ? [client.allowInsecureRequests] : [],
        }),
      )
      .catch((error) => {
        config = undefined;
        throw error;
      });
    return config;
  };
  const cookie = 'nyckel.demo';
  const sessionId = (ctx: Context) => {
    let id = ctx.cookies.get(cookie);
    if (!id) {
      id = crypto.randomBytes(16).toString('base64url');
      ctx.cookies.set(cookie, id, { httpOnly: true, sameSite: 'lax', path: '/demo' });
    }
    return id;
  };

  router.get('/', (ctx) => {
    const session = signedIn.get(sessionId(ctx));
    const locale = pages.localeOf(ctx);
    pages.html(ctx, 'demo', locale, { clientName: 'Nyckel demo app', claims: session ? JSON.stringify(session.claims, null, 2) : undefined });
  });

  router.get('/login', async (ctx) => {
    const client = await openidClient();
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    pending.set(sessionId(ctx), { verifier, state, nonce });
    const url = client.buildAuthorizationUrl(await configuration(), {
      redirect_uri: `${issuer}/demo/callback`,
      scope: 'openid profile email phone',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      ...(typeof ctx.query.ui_locales === 'string' ? { ui_locales: ctx.query.ui_locales } : {}),
    });
    ctx.redirect(url.toString());
  });

  router.get('/callback', async (ctx) => {
    const id = sessionId(ctx);
    const started = pending.get(id);
    pending.delete(id);
    if (!started) return ctx.redirect('/demo');
    // ctx.href is named after the issuer whatever the request says (src/server/issuer-origin.ts).
    const current = new URL(ctx.href);
    try {
      const client = await openidClient();
      const tokens = await client.authorizationCodeGrant(await configuration(), current, {
        pkceCodeVerifier: started.verifier,
        expectedState: started.state,
        expectedNonce: started.nonce,
      });
      const userinfo = await client.fetchUserInfo(await configuration(), tokens.access_token, tokens.claims()!.sub);
      signedIn.set(id, { claims: { ...tokens.claims(), userinfo }, idToken: tokens.id_token! });
    } catch {
      // Cancelled or refused: back to the start page, signed out.
    }
    ctx.redirect('/demo');
  });

  router.get('/logout', async (ctx) => {
    const id = sessionId(ctx);
    const session = signedIn.get(id);
    signedIn.delete(id);
    if (!session) return ctx.redirect('/demo');
    const client = await openidClient();
    ctx.redirect(client.buildEndSessionUrl(await configuration(), { id_token_hint: session.idToken, post_logout_redirect_uri: `${issuer}/demo` }).toString());
  });

  return router;
}
