import type { Context, Next } from 'koa';

/**
 * Every URL Nyckel publishes, sends or redirects to is built from ISSUER, never from the request. For
 * everything downstream (Nyckel's routes and oidc-provider, which names its endpoints after the
 * request it answers) the request's origin is the issuer's: a forged Host, an X-Forwarded-Host (with
 * NYCKEL_TRUST_PROXY) or an absolute request target (`GET http://evil.example/… HTTP/1.1`) never
 * reaches discovery, a redirect or a mail. The scheme seen for cookies (`ctx.secure`) is left alone:
 * it still follows the connection, or X-Forwarded-Proto behind a trusted proxy.
 */
export function pinnedToIssuer(issuer: string) {
  const { origin, host, hostname } = new URL(issuer);
  return async (ctx: Context, next: Next) => {
    const href = `${origin}${pathAndQuery(ctx.originalUrl)}`;
    // oidc-provider builds its own context from the raw request: it must see the same host.
    ctx.req.headers.host = host;
    delete ctx.req.headers['x-forwarded-host'];
    for (const [name, value] of Object.entries({ origin, host, hostname, href, URL: new URL(href) })) {
      Object.defineProperty(ctx.request, name, { value, configurable: true });
    }
    await next();
  };
}

/** The path and query of a request target, whatever host an absolute target names. */
function pathAndQuery(requestTarget: string): string {
  try {
    const url = new URL(requestTarget, 'http://nyckel.invalid');
    return `${url.pathname}${url.search}`;
  } catch {
    return '/';
  }
}
