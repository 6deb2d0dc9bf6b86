import fs from 'node:fs';
import path from 'node:path';
import Koa from 'koa';
import Router from '@koa/router';
import helmet from 'koa-helmet';
import type Provider from 'oidc-provider';
import type { ResolvedScript } from '../factors/registry.ts';
import type { FactorImage } from '../factors/ui-contract.ts';
import { readSvgFile } from './svg-file.ts';
import { interactionsDir } from '../i18n/i18n.ts';
import type { Logger } from '../logger.ts';
import { errorHandler } from './error-handler.ts';
import { NyckelError } from '../errors.ts';
import { httpMetrics } from '../observability/http-metrics.ts';
import { requestIds } from '../observability/request-id.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Branding } from '../branding/brand.ts';
import type { PageRenderer } from './pages.ts';
import { pinnedToIssuer } from './issuer-origin.ts';
import { pageDirectives } from './content-security.ts';

export interface AppDependencies {
  issuer: string;
  /** The paths oidc-provider answers; anything else no router took is a localised 404. */
  isProviderPath: (path: string) => boolean;
  trustProxy: boolean;
  logger: Logger;
  pages: PageRenderer;
  /** The provider in force; replaced on reload, so it is read per request. */
  provider: () => Provider;
  routers: Router[];
  /** Run before oidc-provider answers (each passes on what is not its own), such as the user-code throttle. */
  beforeProvider?: Koa.Middleware[];
  /** The factors' scripts (from the registry), served at /assets/<name>. */
  factorScripts: readonly ResolvedScript[];
  /** SVG images the installation supplies for the factors' pages, served at /assets/<name>. */
  factorImages?: readonly FactorImage[];
  /** Keys for signed cookies (the same as oidc-provider's). */
  cookieKeys: string[];
  /** Counts every response and rate-limit refusals answered by the error handler. */
  metrics?: Metrics;
}

function securityHeaders(issuer: string) {
  const https = issuer.startsWith('https:');
  return helmet({
    contentSecurityPolicy: { useDefaults: false, directives: pageDirectives(issuer) },
    strictTransportSecurity: https ? { maxAge: 31536000, includeSubDomains: true } : false,
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginEmbedderPolicy: false,
  });
}

/** Scripts of pages that are no factor's: the page that waits for a link, the account pages, the sign-out's frames. */
const GENERIC_SCRIPTS = ['wait.js', 'account.js', 'logout-frames.js'];
const STYLESHEETS = ['nyckel.css', 'methods.css'];

function assetRoutes(factorScripts: readonly ResolvedScript[], factorImages: readonly FactorImage[], branding: Pick<Branding, 'asset'>): Router {
  const router = new Router();
  // One stylesheet from the files of interactions/styles/: the pages' own, then the methods' parts.
  const css = Buffer.concat(STYLESHEETS.map((name) => fs.readFileSync(path.join(interactionsDir, 'styles', name))));
  // The generic pages' scripts, then each factor's own (from the registry).
  const scripts = new Map([
    ...GENERIC_SCRIPTS.map((name) => [name, fs.readFileSync(path.join(interactionsDir, 'scripts', name))] as const),
    ...factorScripts.map(({ name, file }) => [name, fs.readFileSync(file)] as const),
  ]);
  // Read and checked once: a file that is not a plain SVG image stops the start.
  const images = new Map(factorImages.map(({ name, file, setting }) => [name, readSvgFile(file, setting)] as const));
  router.get('/assets/nyckel.css', (ctx) => {
    ctx.type = 'text/css; charset=utf-8';
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.body = css;
  });
  // The brand's stylesheet and logos: their URLs name their content, so they never change.
  router.get('/assets/:file', (ctx, next) => {
    const asset = branding.asset(ctx.path);
    if (!asset) return next();
    ctx.type = asset.type;
    ctx.set('Cache-Control', 'public, max-age=31536000, immutable');
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.body = asset.bytes;
  });
  router.get('/assets/:script', (ctx) => {
    const image = images.get(ctx.params.script);
    if (image) {
      ctx.type = 'image/svg+xml';
      ctx.set('Cache-Control', 'public, max-age=3600');
      // Opened on its own, the image may draw and style itself, and nothing more.
      ctx.set('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'; sandbox");
      ctx.body = image;
      return;
    }
    const script = scripts.get(ctx.params.script);
    if (!script) return;
    ctx.type = 'text/javascript; charset=utf-8';
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.body = script;
  });
  return router;
}

export function createApp(deps: AppDependencies): Koa {
  const app = new Koa();
  app.proxy = deps.trustProxy;
  app.keys = deps.cookieKeys;
  app.silent = true;
  app.use(requestIds({ trustProxy: deps.trustProxy }));
  app.use(pinnedToIssuer(deps.issuer));
  if (deps.metrics) app.use(httpMetrics(deps.metrics));
  app.use(securityHeaders(deps.issuer));
  app.use(errorHandler(deps.pages, deps.logger, deps.metrics));
  for (const router of [assetRoutes(deps.factorScripts, deps.factorImages ?? [], deps.pages.branding), ...deps.routers]) {
    app.use(router.routes());
    app.use(router.allowedMethods());
  }
  for (const middleware of deps.beforeProvider ?? []) app.use(middleware);
  const callbacks = new WeakMap<Provider, ReturnType<Provider['callback']>>();
  app.use(async (ctx) => {
    // Anything else is not found: a localised page (errorHandler), not oidc-provider's plain-text 404.
    if (!deps.isProviderPath(ctx.path)) throw new NyckelError('not_found');
    const provider = deps.provider();
    let callback = callbacks.get(provider);
    if (!callback) {
      callback = provider.callback();
      callbacks.set(provider, callback);
    }
    ctx.respond = false;
    await callback(ctx.req, ctx.res);
  });
  return app;
}
