import type { Context } from 'koa';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { translator } from '../i18n/i18n.ts';
import type { PageRenderer } from './pages.ts';

/** oidc-provider's errors of the code page (lib/helpers/re_render_errors.js), by name: the message and status. */
const CODE_ERRORS: Record<string, { key: string; status: number }> = {
  NoCodeError: { key: 'device.no_code', status: 400 },
  NotFoundError: { key: 'device.wrong_code', status: 400 },
  ExpiredError: { key: 'device.expired_code', status: 400 },
  AlreadyUsedError: { key: 'device.used_code', status: 400 },
};

/** The form token oidc-provider keeps in the session for its device forms (it checks it on every post). */
function xsrfOf(ctx: KoaContextWithOIDC): string {
  const state = ctx.oidc.session?.state as { secret?: string } | undefined;
  return state?.secret ?? '';
}

/**
 * The hosted pages of the Device Authorization Grant (RFC 8628), rendered for oidc-provider's
 * features.deviceFlow: the code entry, the confirmation naming the client, and the end.
 */
export class DevicePages {
  constructor(
    private readonly pages: PageRenderer,
    private readonly action: string,
  ) {}

  /**
   * The code entry page; after a refused code, that code again with why (`error.name`, oidc-provider's);
   * `prefilled`: the code of the link a device showed (verification_uri_complete), to be sent by the user.
   */
  async codeEntry(ctx: KoaContextWithOIDC, out?: { error: string }, error?: Error & { userCode?: string }, prefilled = '') {
    const koa = ctx as unknown as Context;
    const locale = this.pages.localeOf(koa);
    const t = translator(locale);
    const known = error ? CODE_ERRORS[error.name] : undefined;
    const aborted = error?.name === 'AbortedError';
    let message: string | undefined;
    if (known) message = t(known.key);
    else if (error && !aborted) message = out?.error === 'temporarily_unavailable' ? t('errors.temporarily_unavailable') : t('device.failed');
    // Without an error the page is the answer (koa's status is still its default 404 then).
    const status = known ? known.status : error && koa.status >= 400 ? koa.status : 200;
    this.pages.html(
      koa,
      'device-code',
      locale,
      { action: this.action, xsrf: xsrfOf(ctx), code: error?.userCode ?? prefilled, error: message, notice: aborted ? t('device.aborted') : undefined },
      status,
    );
  }

  /** Asks before signing in: the client's name and the code, to be compared with the device's. */
  async confirm(ctx: KoaContextWithOIDC, clientId: string, userCode: string) {
    const koa = ctx as unknown as Context;
    this.pages.html(koa, 'device-confirm', this.pages.localeOf(koa), {
      action: this.action,
      xsrf: xsrfOf(ctx),
      userCode,
      clientId,
      clientName: this.pages.clientName(clientId) ?? clientId,
    });
  }

  async done(ctx: KoaContextWithOIDC) {
    const koa = ctx as unknown as Context;
    const clientId = ctx.oidc.client?.clientId;
    this.pages.html(koa, 'device-done', this.pages.localeOf(koa), { clientId, clientName: this.pages.clientName(clientId) ?? clientId });
  }
}
