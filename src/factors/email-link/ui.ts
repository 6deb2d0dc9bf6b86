import type Router from '@koa/router';
import type { Context } from 'koa';
import { NyckelError } from '../../errors.ts';
import { targetedStartPage } from '../shared/pages/targeted-start.ts';
import type { FactorRouteHost, FactorUi, SignInOfRequest } from '../ui-contract.ts';

/**
 * A sign-in link mailed to one of the user's addresses: the page waits for it to be opened in the
 * same browser (wait.js, a generic script), and the link lands on this factor's own pages.
 */
export const emailLinkUi: FactorUi = {
  id: 'email-link',
  page: targetedStartPage({ waitForLink: true }),
  failures: {},
  routes: linkLandingRoutes,
};

function linkLandingRoutes(router: Router, host: FactorRouteHost) {
  /** The landing page of a sign-in link. A GET never consumes it: mail scanners fetch links. */
  router.get('/link/:challengeId/:token', async (ctx) => {
    const state = await linkSignIn(host, ctx);
    if (!state) return;
    const module = await host.allowed(ctx, 'email-link');
    host.render(ctx, { template: 'email-link/link-confirm', model: { ...state.frame, action: ctx.path, factor: module.id } });
  });

  router.post('/link/:challengeId/:token', host.form, async (ctx) => {
    const state = await linkSignIn(host, ctx);
    if (!state) return;
    const input = host.readForm(ctx);
    host.assertCsrf(ctx, input._csrf);
    const module = await host.allowed(ctx, 'email-link');
    const outcome = await module.verify(state.challengeCtx, { challengeId: ctx.params.challengeId, token: ctx.params.token });
    if (outcome.status === 'failed') {
      await host.recordFailure(ctx, module, outcome);
      const shown = host.failure(ctx, 'link', outcome);
      return host.render(ctx, {
        template: 'message',
        model: { ...state.frame, title: state.t('link.failed_title'), message: shown.message },
        status: shown.status,
      });
    }
    if (outcome.status !== 'verified') return;
    await host.recordVerified(ctx, module, outcome);
    // The first window notices and continues by itself; this one can continue too.
    host.render(ctx, { template: 'email-link/link-confirmed', model: { ...state.frame } });
  });
}

/** The sign-in a link belongs to, or the "open it in the browser you started in" page. */
async function linkSignIn(host: FactorRouteHost, ctx: Context): Promise<SignInOfRequest | undefined> {
  try {
    return await host.signIn(ctx);
  } catch (error) {
    if (!(error instanceof NyckelError || (error as Error).name === 'SessionNotFound')) throw error;
    // No sign-in of this browser: a link already used or expired says so; any other is from another browser.
    const spent = await host.spent(String((ctx.params as Record<string, string>).challengeId));
    if (spent) return void host.message(ctx, 'link.failed_title', `factor_errors.${spent}`, 410);
    host.message(ctx, 'link.other_browser_title', 'link.other_browser', 400);
    return undefined;
  }
}
