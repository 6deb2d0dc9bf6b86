import type { Context, Next } from 'koa';
import { ZodError } from 'zod';
import { NyckelError, isNyckelError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { isStorageUnavailable, storageUnavailable } from '../storage/unavailable.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { PageRenderer } from './pages.ts';

/**
 * Maps anything thrown below to a NyckelError. A store that cannot be reached (the database, Redis)
 * is temporarily_unavailable, with a warning; other unknown errors become server_error and are logged.
 */
export function toNyckelError(error: unknown, logger: Logger): NyckelError {
  if (isNyckelError(error)) return error;
  if (error instanceof ZodError) return new NyckelError('invalid_input', undefined, { cause: error });
  if (isStorageUnavailable(error)) {
    logger.warn({ err: error }, 'storage unreachable; answering 503 temporarily_unavailable');
    return storageUnavailable(error);
  }
  const name = (error as { name?: string })?.name;
  if (name === 'SessionNotFound') return new NyckelError('session_expired', undefined, { cause: error });
  const status = (error as { status?: number; expose?: boolean })?.status;
  if (status === 404) return new NyckelError('not_found');
  if (status === 413) return new NyckelError('payload_too_large');
  if (status === 415) return new NyckelError('unsupported_media_type');
  if (status && status >= 400 && status < 500) return new NyckelError('invalid_request');
  logger.error({ err: error }, 'unhandled error');
  return new NyckelError('server_error', undefined, { cause: error });
}

/**
 * One place where errors become responses: a localised page for browsers, JSON for programs. A rate
 * limit refusal that ends here is counted (limiter "other"; the limiters with a page of their own
 * count where they answer).
 */
export function errorHandler(pages: PageRenderer, logger: Logger, metrics?: Metrics) {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined && ctx.respond !== false) throw new NyckelError('not_found');
    } catch (thrown) {
      const error = toNyckelError(thrown, logger.child({ requestId: ctx.state.requestId as string | undefined }));
      if (error.code === 'rate_limited') metrics?.rateLimitRefused('other');
      if (ctx.accepts('html', 'json') === 'json') {
        ctx.status = error.status;
        ctx.set('Cache-Control', 'no-store');
        if (error.retryAfterSeconds) ctx.set('Retry-After', String(error.retryAfterSeconds));
        ctx.body = { error: error.code, error_description: error.detail ?? error.code };
        return;
      }
      pages.error(ctx, error);
    }
  };
}
