import type { Context } from 'koa';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { supportedLocales, type Locale } from '../i18n/locales.ts';
import type { ClientDirectory } from '../clients/directory.ts';
import { NyckelError, type ErrorCode } from '../errors.ts';
import { hasMessage, negotiateLocale, translator } from '../i18n/i18n.ts';
import { storageUnavailable } from '../storage/unavailable.ts';
import type { Branding } from '../branding/brand.ts';
import type { Views } from './views.ts';

/** Remembers which app the browser was signing in to, so an error page can link back to it. */
export const CLIENT_COOKIE = 'nyckel.client';
/** The language the person chose with the switcher on the pages: it wins over every other hint. */
export const LANGUAGE_COOKIE = 'nyckel.lang';
/** Each language names itself, whatever the page's language. */
const LANGUAGE_NAMES: Record<Locale, string> = { sv: 'Svenska', da: 'Dansk', en: 'English' };

/**
 * Where the language switcher returns to: this page when it was fetched (GET), else the page of the
 * same step that can be fetched again (a form's answer is not repeated), so the interaction is kept.
 */
export function switchBackTo(ctx: Pick<Context, 'method' | 'url' | 'path'>): string {
  // The device sign-in's pages (oidc-provider's code_verification and device_resume routes) cannot be
  // fetched again: the code page can, and the code is typed again.
  if (ctx.path === '/device' || ctx.path.startsWith('/device/')) return '/device';
  if (ctx.method === 'GET') return ctx.url;
  const step = /^(\/interaction\/[^/]+)(\/mfa|\/forgot-password)?/.exec(ctx.path);
  if (step) return step[1] + (step[2] ?? '');
  return ctx.path.startsWith('/account') ? '/account' : '/';
}

/** An app's front-channel logout URL, loaded in a hidden frame of the sign-out's page. */
export interface LogoutFrame {
  clientId: string;
  clientName: string;
  url: string;
}

export class PageRenderer {
  constructor(
    readonly views: Views,
    private readonly clients: ClientDirectory,
    private readonly defaultLocale: Locale,
    readonly branding: Branding,
  ) {}

  localeOf(ctx: Context, uiLocales?: string): Locale {
    const chosen = ctx.cookies.get(LANGUAGE_COOKIE);
    if (chosen && (supportedLocales as readonly string[]).includes(chosen)) return chosen as Locale;
    const fromQuery = typeof ctx.query.ui_locales === 'string' ? ctx.query.ui_locales : undefined;
    const oidcParams = (ctx as unknown as KoaContextWithOIDC).oidc?.params as { ui_locales?: string } | undefined;
    return negotiateLocale({
      uiLocales: uiLocales ?? oidcParams?.ui_locales ?? fromQuery,
      // "*" (what programs send) expresses no preference: the default locale applies.
      acceptsLanguages: (languages) => (/^[\s*]*$/.test(ctx.get('accept-language')) ? false : ctx.acceptsLanguages(languages)),
      fallback: this.defaultLocale,
    });
  }

  clientName(clientId: string | undefined): string | undefined {
    return this.branding.clientName(clientId);
  }

  /**
   * `context.clientId`: the client the page is for, whose logo and support contact it shows (the
   * installation's brand stays in the header); absent, the installation's alone.
   */
  html(ctx: Context, template: string, locale: Locale, context: Record<string, unknown>, status = 200) {
    ctx.status = status;
    ctx.type = 'text/html; charset=utf-8';
    ctx.set('Cache-Control', 'no-store');
    const back = encodeURIComponent(switchBackTo(ctx));
    const languages = supportedLocales.map((code) => ({ code, name: LANGUAGE_NAMES[code], current: code === locale, href: `/language/${code}?back=${back}` }));
    const brand = this.branding.page(typeof context.clientId === 'string' ? context.clientId : undefined);
    ctx.body = this.views.render(template, locale, { languages, brand, ...context });
  }

  error(ctx: Context, error: NyckelError, locale = this.localeOf(ctx)) {
    const t = translator(locale);
    const clientId = ctx.cookies.get(CLIENT_COOKIE);
    const minutes = Math.max(1, Math.ceil((error.retryAfterSeconds ?? 60) / 60));
    if (error.retryAfterSeconds) ctx.set('Retry-After', String(error.retryAfterSeconds));
    this.html(
      ctx,
      'error',
      locale,
      {
        message: t(`errors.${error.code}`, { minutes }),
        clientId,
        clientName: this.clientName(clientId),
        backUrl: this.clients.homeOf(clientId),
      },
      error.status,
    );
  }

  async logoutConfirmation(ctx: KoaContextWithOIDC, form: string) {
    const clientId = ctx.oidc.client?.clientId;
    this.html(ctx, 'logout', this.localeOf(ctx), {
      form,
      clientId,
      clientName: this.clientName(clientId),
      signingOut: true,
    });
  }

  /**
   * After the logout confirmation. oidc-provider names the client only when the user chose to stay
   * signed in: then just that app was signed out, and the page must not say "You are signed out".
   */
  async loggedOut(ctx: KoaContextWithOIDC) {
    const clientId = ctx.oidc.client?.clientId;
    this.html(ctx, 'logged-out', this.localeOf(ctx), {
      clientId,
      clientName: this.clientName(clientId),
      backUrl: this.clients.homeOf(clientId),
      stayed: typeof ctx.oidc.params?.client_id === 'string',
      signingOut: true,
    });
  }

  /**
   * After a sign-out, the page loading the front-channel logout URL of each app signed out (in hidden
   * frames), then going on to `continueUrl` (src/provider/frontchannel-logout.ts).
   */
  logoutFrames(ctx: Context, frames: readonly LogoutFrame[], continueUrl: string, clientId: string | undefined) {
    this.html(ctx, 'logout-frames', this.localeOf(ctx), { frames, continueUrl, clientId, clientName: this.clientName(clientId), signingOut: true });
  }

  /** oidc-provider's renderError: protocol errors that cannot be redirected back to the client. */
  async protocolError(ctx: KoaContextWithOIDC, out: { error: string; error_description?: string }, error: Error) {
    const koa = ctx as unknown as Context;
    const locale = this.localeOf(koa);
    if (error.name === 'SessionNotFound' || error.name === 'InvalidSession') {
      const status = koa.status;
      this.error(koa, new NyckelError('session_expired'), locale);
      koa.status = status >= 400 ? status : 400;
      return;
    }
    // A store outage (src/storage/adapter-faults.ts): the page the user can reload once it is over.
    if (out.error === 'temporarily_unavailable') {
      this.error(koa, storageUnavailable(error), locale);
      return;
    }
    const t = translator(locale);
    const clientId = ctx.oidc?.client?.clientId ?? koa.cookies.get(CLIENT_COOKIE);
    const status = koa.status;
    this.html(
      koa,
      'error',
      locale,
      {
        // oidc-provider's codes and descriptions are English and technical: they are quoted for the
        // app's support (marked lang="en"), after a sentence in the page's language.
        message: t('errors.oauth'),
        reason: hasMessage(locale, `errors.oauth_reasons.${out.error}`) ? t(`errors.oauth_reasons.${out.error}`) : undefined,
        technical: out.error_description ? `${out.error}: ${out.error_description}` : out.error,
        clientId,
        clientName: this.clientName(clientId),
        backUrl: this.clients.homeOf(clientId),
      },
      status >= 400 ? status : 400,
    );
  }

  errorCodeMessage(locale: Locale, code: ErrorCode) {
    return translator(locale)(`errors.${code}`);
  }
}
