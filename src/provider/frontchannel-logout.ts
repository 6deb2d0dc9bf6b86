import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { ClientConfig, ClientsFile } from '../clients/clients-file.ts';
import type { LogoutFrame, PageRenderer } from '../server/pages.ts';
import { pageDirectives, policyText } from '../server/content-security.ts';
import { sameRoute } from './route-path.ts';

/** What a session held before the sign-out ended it: its apps' sids, and the app that asked. */
interface SessionBefore {
  authorizations: Record<string, { sid?: string }>;
  askingClientId?: string;
}

/**
 * OIDC Front-Channel Logout 1.0, which oidc-provider 9 lacks. When a sign-out is confirmed at
 * /session/end/confirm, oidc-provider answers with a redirect (to the app's post_logout_redirect_uri,
 * or to its "signed out" page). If an app signed out then registered a frontchannel_logout_uri, that
 * redirect becomes a page loading each such URL in a hidden frame, which then goes on to where the
 * redirect led (logout-frames.js; a meta refresh without JavaScript; a visible link). Its CSP allows
 * frames of exactly those apps' origins. "Signed out" means what back-channel logout means at
 * end_session: every app of the session, or with "stay signed in" the asking app alone.
 */
export function frontchannelLogout(provider: Provider, deps: { issuer: string; endSessionPath: string; clients: ClientsFile; pages: PageRenderer }): void {
  const confirmPath = `${deps.endSessionPath}/confirm`;
  includeSidFor(provider, new Set(deps.clients.clients.filter((c) => c.frontchannel_logout_session_required).map((c) => c.client_id)));
  provider.use(async (ctx, next) => {
    if (ctx.method !== 'POST' || !sameRoute(ctx.path, confirmPath)) {
      await next();
      return;
    }
    const before = await sessionBefore(provider, ctx);
    await next();
    const oidc = (ctx as KoaContextWithOIDC).oidc;
    const location = ctx.response.get('Location');
    if (!before || ctx.status !== 303 || oidc?.route !== 'end_session_confirm' || !location) return;
    const signedOut = oidc.params?.logout ? Object.keys(before.authorizations) : before.askingClientId ? [before.askingClientId] : [];
    const frames = signedOut.flatMap((clientId) => {
      const client = deps.clients.clients.find((c) => c.client_id === clientId);
      return client?.frontchannel_logout_uri ? [frameOf(client, before.authorizations[clientId]?.sid, deps.issuer)] : [];
    });
    if (frames.length === 0) return;
    ctx.remove('Location');
    deps.pages.logoutFrames(ctx, frames, location, oidc.client?.clientId);
    const frameOrigins = [...new Set(frames.map((frame) => new URL(frame.url).origin))];
    ctx.set('Content-Security-Policy', policyText(pageDirectives(deps.issuer, { frameOrigins })));
  });
}

/**
 * The ID tokens of an app that asked for iss and sid carry its sid (so the app can tell which session a
 * front-channel logout means). oidc-provider decides that by `includeSid()`, true only for back-channel
 * apps: extended here, on this provider's own Client class.
 */
function includeSidFor(provider: Provider, clientIds: ReadonlySet<string>): void {
  const prototype = provider.Client.prototype as unknown as { clientId: string; includeSid: (this: { clientId: string }) => boolean };
  const backchannel = prototype.includeSid;
  prototype.includeSid = function includeSid(this: { clientId: string }) {
    return Boolean(backchannel.call(this)) || clientIds.has(this.clientId);
  };
}

/** The session of this browser as it was before the sign-out (a store failure: none, and no frames). */
async function sessionBefore(provider: Provider, ctx: Context): Promise<SessionBefore | undefined> {
  try {
    const session = await provider.Session.get(ctx);
    if (!session.accountId) return undefined;
    const state = session.state as { clientId?: string } | undefined;
    return { authorizations: structuredClone(session.authorizations ?? {}), askingClientId: state?.clientId };
  } catch {
    return undefined;
  }
}

/** The app's URL, with iss and sid added to its query when it asked for them. */
function frameOf(client: ClientConfig, sid: string | undefined, issuer: string): LogoutFrame {
  let url = client.frontchannel_logout_uri!;
  if (client.frontchannel_logout_session_required) {
    const parameters = new URLSearchParams({ iss: issuer, ...(sid ? { sid } : {}) });
    const parsed = new URL(url);
    url = `${parsed.origin}${parsed.pathname}${parsed.search ? `${parsed.search}&` : '?'}${parameters}`;
  }
  return { clientId: client.client_id, clientName: client.client_name ?? client.name, url };
}
