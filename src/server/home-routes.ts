import Router from '@koa/router';
import type { PageRenderer } from './pages.ts';

/** What /readyz asks: does the database answer, and are all committed migrations applied? */
export type ReadinessCheck = () => Promise<{ database: boolean; pendingMigrations: string[] }>;

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
    const state = readiness ? await readiness().catch(() => ({ database: false, pendingMigrations: [] })) : { database: true, pendingMigrations: [] };
    const ready = state.database && state.pendingMigrations.length === 0;
    ctx.status = ready ? 200 : 503;
    const migrations = !state.database ? 'unknown' : state.pendingMigrations.length === 0 ? 'applied' : { pending: state.pendingMigrations };
    ctx.body = { status: ready ? 'ok' : 'unavailable', database: state.database ? 'ok' : 'unreachable', migrations };
  });
  return router;
}
