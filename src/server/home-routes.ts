import Router from '@koa/router';
import type { PageRenderer } from './pages.ts';

/**
 * What /readyz asks: does the database answer, are all committed migrations applied, does Redis
 * answer (undefined when none is configured), and is the node shutting down?
 */
export type ReadinessCheck = () => Promise<{ database: boolean; pendingMigrations: string[]; redis?: boolean; stopping?: boolean }>;

export function homeRoutes(pages: PageRenderer, readiness?: ReadinessCheck): Router {
  const router = new Router();
  router.get('/', (ctx) => pages.html(ctx, 'home', pages.localeOf(ctx), {}));
  // Live: the process answers (a load balancer restarts it otherwise).
  router.get('/healthz', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok' };
  });
  // Ready: it can serve sign-ins (a load balancer sends it traffic only then).
  router.get('/readyz', async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    const state = readiness
      ? await readiness().catch(() => ({ database: false, pendingMigrations: [] as string[], redis: undefined, stopping: false }))
      : { database: true, pendingMigrations: [] };
    const ready = state.database && state.pendingMigrations.length === 0 && state.redis !== false && !state.stopping;
    ctx.status = ready ? 200 : 503;
    const migrations = !state.database ? 'unknown' : state.pendingMigrations.length === 0 ? 'applied' : { pending: state.pendingMigrations };
    ctx.body = {
      status: state.stopping ? 'stopping' : ready ? 'ok' : 'unavailable',
      database: state.database ? 'ok' : 'unreachable',
      migrations,
      ...(state.redis === undefined ? {} : { redis: state.redis ? 'ok' : 'unreachable' }),
    };
  });
  return router;
}
