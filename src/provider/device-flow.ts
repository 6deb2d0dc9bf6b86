import type Provider from 'oidc-provider';
import type { Configuration, KoaContextWithOIDC } from 'oidc-provider';
import { DEVICE_CODE_GRANT } from '../clients/clients-file.ts';
import { DevicePages } from '../server/device-pages.ts';
import type { PageRenderer } from '../server/pages.ts';
import { POLLING_INTERVAL_SECONDS, type DeviceFlowLimits } from './device-flow-limits.ts';

type DeviceFlowFeature = NonNullable<NonNullable<Configuration['features']>['deviceFlow']>;

/** The code page's path: oidc-provider's code_verification route (providerRoutes in provider.ts). */
export const CODE_VERIFICATION_PATH = '/device';

/**
 * oidc-provider's deviceFlow feature with Nyckel's own pages. User codes are eight letters of
 * oidc-provider's base-20 alphabet (no vowels, so no words; about 2.6 × 10^10 codes), and every page
 * whose code named a device sign-in tells the throttle so, so that only wrong codes use up its budget.
 */
export function deviceFlow(enabled: boolean, pages: PageRenderer, throttle: DeviceFlowLimits): DeviceFlowFeature {
  const devicePages = new DevicePages(pages, CODE_VERIFICATION_PATH);
  const found = (ctx: KoaContextWithOIDC) => {
    if (ctx.oidc.entities.DeviceCode) throttle.codeFound(ctx);
  };
  return {
    enabled,
    charset: 'base-20',
    mask: '****-****',
    userCodeInputSource: async (ctx, _form, out, error) => {
      found(ctx);
      await devicePages.codeEntry(ctx, out, error);
    },
    userCodeConfirmSource: async (ctx, _form, client, _deviceInfo, userCode) => {
      found(ctx);
      await devicePages.confirm(ctx, client.clientId, userCode);
    },
    // Also reached from the code page itself: a browser already signed in goes on without a sign-in.
    successSource: async (ctx) => {
      found(ctx);
      await devicePages.done(ctx);
    },
  };
}

interface OAuthErrorBody {
  error?: string;
  error_description?: string;
}

/**
 * What oidc-provider 9 answers differently from RFC 8628: a client whose grant_types lack the device
 * grant is refused with unauthorized_client (RFC 6749 §5.2), not invalid_request; and a device polling
 * sooner than the interval is told slow_down (oidc-provider has the error but never sends it). The
 * link with the code (verification_uri_complete) opens the code page with the code filled in, instead
 * of oidc-provider's English page that posts it by script.
 */
export function deviceFlowAnswers(provider: Provider, limits: DeviceFlowLimits, pages: PageRenderer): void {
  const devicePages = new DevicePages(pages, CODE_VERIFICATION_PATH);
  provider.use(async (ctx, next) => {
    await next();
    const { oidc } = ctx as KoaContextWithOIDC;
    const linked = (oidc?.params as { user_code?: unknown } | undefined)?.user_code;
    if (oidc?.route === 'code_verification' && ctx.method === 'GET' && ctx.status === 200 && linked !== undefined) {
      // A link with the code named twice (an array): the code page saying the code is wrong, not oidc-provider's.
      if (typeof linked === 'string') await devicePages.codeEntry(ctx as KoaContextWithOIDC, undefined, undefined, linked);
      else await devicePages.codeEntry(ctx as KoaContextWithOIDC, undefined, Object.assign(new Error('user_code named twice'), { name: 'NotFoundError' }));
      return;
    }
    const body = ctx.body as OAuthErrorBody | undefined;
    if (!oidc || ctx.status !== 400 || !body?.error) return;
    if (oidc.route === 'device_authorization' && body.error === 'invalid_request' && body.error_description?.endsWith('is not allowed for this client')) {
      body.error = 'unauthorized_client';
      return;
    }
    const params = oidc.params as { grant_type?: string; device_code?: string } | undefined;
    if (oidc.route === 'token' && body.error === 'authorization_pending' && params?.grant_type === DEVICE_CODE_GRANT && params.device_code) {
      if (await limits.pollTooSoon(params.device_code)) {
        ctx.body = { error: 'slow_down', error_description: `poll no more often than every ${POLLING_INTERVAL_SECONDS} seconds` };
      }
    }
  });
}
