import type { EventEmitter } from 'node:events';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Logger } from '../logger.ts';
import { requestIdOf } from './request-id.ts';

/**
 * oidc-provider's error events of the endpoints Nyckel enables. They carry every error the endpoint
 * answered (mostly a client's bad request, not logged); one with a 5xx status (a store that cannot be
 * reached: 503) is logged as a warning.
 */
const endpointErrorEvents = [
  'authorization.error',
  'code_verification.error',
  'device_authorization.error',
  'device_resume.error',
  'discovery.error',
  'end_session.error',
  'end_session_confirm.error',
  'end_session_success.error',
  'grant.error',
  'introspection.error',
  'jwks.error',
  'pushed_authorization_request.error',
  'revocation.error',
  'userinfo.error',
];

type ErrorWithStatus = Error & { status?: number; statusCode?: number; expose?: boolean };

const statusOf = (error: ErrorWithStatus) => error.statusCode ?? error.status ?? 500;

/** Where in Nyckel's logs a request's error goes: its id, method, path and oidc-provider route. */
function about(ctx: KoaContextWithOIDC | undefined) {
  if (!ctx) return {};
  return { requestId: requestIdOf(ctx.req), method: ctx.method, path: ctx.path, route: ctx.oidc?.route };
}

/**
 * Logs what oidc-provider reports instead of letting a 500 pass in silence: every `server_error` (an
 * error it did not expect, answered "oops! something went wrong"), 5xx answers of its endpoints, and
 * errors that escape its own handling (its Koa app's `error` event). Called for every provider built,
 * also those made on reload.
 */
export function logProviderErrors(provider: Provider, logger: Logger): void {
  const events: EventEmitter = provider;
  events.on('server_error', (ctx: KoaContextWithOIDC, error: Error) => {
    logger.error({ err: error, ...about(ctx) }, 'oidc-provider server_error');
  });
  for (const event of endpointErrorEvents) {
    events.on(event, (ctx: KoaContextWithOIDC, error: ErrorWithStatus) => {
      if (statusOf(error) >= 500) logger.warn({ err: error, event, status: statusOf(error), ...about(ctx) }, `oidc-provider ${event}`);
    });
  }
  // A relying party's back-channel logout endpoint that failed: the user is signed out at Nyckel anyway.
  events.on('backchannel.error', (ctx: KoaContextWithOIDC, error: Error, client: { clientId: string }) => {
    logger.warn({ err: error, clientId: client.clientId, ...about(ctx) }, 'back-channel logout failed');
  });
  // Koa's own: an error thrown past every handler. As Koa's default, client errors it exposes are not logged.
  events.on('error', (error: ErrorWithStatus, ctx?: KoaContextWithOIDC) => {
    if (error.expose && statusOf(error) < 500) return;
    logger.error({ err: error, ...about(ctx) }, 'oidc-provider unhandled error');
  });
}
