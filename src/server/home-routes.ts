import Router from '@koa/router';
import type { PageRenderer } from './pages.ts';

export function homeRoutes(pages: PageRenderer): Router {
  const router = new Router();
  router.get('/', (ctx) => pages.html(ctx, 'home', pages.localeOf(ctx), {}));
  router.get('/healthz', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok' };
  });
  return router;
}
