import { NyckelError } from '../errors.ts';
import { supportedLocales } from '../i18n/locales.ts';
import { LANGUAGE_COOKIE } from './pages.ts';
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

  // The language switcher: the choice is kept in a cookie, and the person goes back where they were
  // (a path on this site only; the interaction in progress is kept).
  router.get('/language/:code', (ctx) => {
    const code = ctx.params.code;
    if (!(supportedLocales as readonly string[]).includes(code)) throw new NyckelError('not_found');
    ctx.cookies.set(LANGUAGE_COOKIE, code, { httpOnly: true, sameSite: 'lax', maxAge: 365 * 24 * 3600_000, overwrite: true });
    // A path on this site, printable ASCII only (no scheme-relative //, no backslash, no header-breaking characters).
    const back = typeof ctx.query.back === 'string' && /^\/(?![/\\])[\x21-\x5B\x5D-\x7E]*$/.test(ctx.query.back) ? ctx.query.back : '/';
    ctx.status = 303;
    ctx.redirect(back);
  });
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
