import Router from '@koa/router';
import { NyckelError } from '../errors.ts';
import { safeEqual } from '../security/crypto.ts';
import type { Metrics } from './metrics.ts';

/**
 * GET /metrics in the Prometheus text format. With a token (NYCKEL_METRICS_TOKEN) only a scraper
 * sending `Authorization: Bearer <token>` is answered; the comparison takes the same time for any
 * wrong token.
 */
export function metricsRoutes(metrics: Metrics, token?: string): Router {
  const router = new Router();
  router.get('/metrics', async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    if (token) {
      const given = /^Bearer +(\S+)\s*$/i.exec(ctx.get('authorization'))?.[1] ?? '';
      if (!safeEqual(given, token)) {
        ctx.set('WWW-Authenticate', 'Bearer realm="metrics"');
        throw new NyckelError('login_required', 'a bearer token is required for /metrics');
      }
    }
    const { contentType, body } = await metrics.exposition();
    ctx.type = contentType;
    ctx.body = body;
  });
  return router;
}
