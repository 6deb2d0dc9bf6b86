import type { Context, Next } from 'koa';
import type { Metrics } from './metrics.ts';

/** Path prefixes and the coarse class a request is counted under; the first match wins. */
const routeClasses: ReadonlyArray<readonly [prefix: string, routeClass: string]> = [
  ['/interaction/', 'interaction'],
  ['/token', 'token'],
  ['/auth', 'authorization'],
  ['/request', 'authorization'],
  ['/me', 'userinfo'],
  ['/session/', 'logout'],
  ['/.well-known/', 'discovery'],
  ['/jwks', 'discovery'],
  ['/account', 'account'],
  ['/admin/', 'admin'],
  ['/authenticator', 'authenticator'],
  ['/assets/', 'assets'],
  ['/healthz', 'health'],
  ['/readyz', 'health'],
  ['/metrics', 'metrics'],
];

const methods = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** The class of a path: never the path itself, which carries interaction uids, challenge ids and tokens. */
export function routeClassOf(path: string): string {
  const matches = (prefix: string) =>
    prefix.endsWith('/') ? path.startsWith(prefix) || path === prefix.slice(0, -1) : path === prefix || path.startsWith(`${prefix}/`);
  return routeClasses.find(([prefix]) => matches(prefix))?.[1] ?? 'other';
}

/**
 * Counts every response once it is sent, whoever wrote it (Koa, or oidc-provider writing to the raw
 * response): the status is read from the response as it left.
 */
export function httpMetrics(metrics: Metrics) {
  return async (ctx: Context, next: Next) => {
    const method = methods.has(ctx.method) ? ctx.method : 'OTHER';
    const routeClass = routeClassOf(ctx.path);
    ctx.res.once('finish', () => metrics.httpResponse(method, routeClass, ctx.res.statusCode));
    await next();
  };
}
