import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Context, Next } from 'koa';

/**
 * One id per request, in the `X-Request-Id` response header and in every log line about the request,
 * so a 500 a user or a relying party reports can be found in the logs. oidc-provider handles its
 * requests in a Koa context of its own, on the same Node request: the id is kept by that request.
 */
const ids = new WeakMap<IncomingMessage, string>();

/** What a proxy may send as the id: short, and nothing that could break or forge a log line. */
const acceptable = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Gives the request its id: the proxy's `X-Request-Id` when Nyckel trusts the proxy (and the value is
 * acceptable), else a new random UUID.
 */
export function requestIds(options: { trustProxy: boolean }) {
  return async (ctx: Context, next: Next) => {
    const given = options.trustProxy ? ctx.get('x-request-id') : '';
    const id = acceptable.test(given) ? given : randomUUID();
    ids.set(ctx.req, id);
    ctx.state.requestId = id;
    ctx.set('X-Request-Id', id);
    await next();
  };
}

/** The id of a request (undefined for one that did not pass through requestIds). */
export function requestIdOf(req: IncomingMessage): string | undefined {
  return ids.get(req);
}
