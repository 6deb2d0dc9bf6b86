import type Router from '@koa/router';
import type { Middleware } from 'koa';
import type { Context } from 'koa';
import { NyckelError } from '../errors.ts';
import type { FactorModule } from '../factors/contract.ts';
import type { FactorUi } from '../factors/ui-contract.ts';
import { isRecoveryCodeModule } from '../factors/recovery-code/index.ts';
import { translator } from '../i18n/i18n.ts';
import { assertCsrf } from '../security/csrf.ts';
import { readForm, routeParam } from '../web/shared/forms.ts';
import { qrDataUrl } from '../web/shared/qr.ts';
import { Visit, codeForm, plainForm, type AccountKit, type AccountRouteDependencies } from './account-kit.ts';

/**
 * Adding a factor whose page side says `via: 'setup'` (an authenticator app, or any factor that
 * shows a QR code and key and takes a code), and new recovery codes. Factors added on pages of their
 * own fall through to those routes.
 */
export function registerAppRoutes(router: Router, deps: AccountRouteDependencies, kit: AccountKit, form: Middleware): void {
  const { engine, pages } = deps;
  const { visit, failure, enrolled, showRecoveryCodes } = kit;

  /** The factor of `/account/add/:factor` when it is added on the setup page, else undefined. */
  function setupFactor(id: string | undefined): { module: FactorModule; ui: FactorUi } | undefined {
    const ui = id === undefined ? undefined : deps.factorUis.get(id);
    const module = id === undefined ? undefined : engine.modules.get(id);
    return ui?.account?.via === 'setup' && module?.enrol.setup ? { module, ui } : undefined;
  }

  async function renderSetup(
    ctx: Context,
    v: Visit,
    module: FactorModule,
    challengeId: string,
    extra: { error?: string; status?: number; label?: string } = {},
  ) {
    const setup = await module.enrol.setup!(v.factorCtx, challengeId);
    if (!setup) throw new NyckelError('session_expired');
    pages.html(
      ctx,
      'mfa-enrol-app',
      v.locale,
      {
        csrfToken: ctx.state.csrfToken as string,
        factor: module.id,
        challengePath: `/account/add/${module.id}/${challengeId}`,
        qr: await qrDataUrl(setup.uri),
        uri: setup.uri,
        secretGroups: setup.secret.match(/.{1,4}/g)!.join(' '),
        label: extra.label,
        error: extra.error,
        cancelHref: '/account',
      },
      extra.status ?? 200,
    );
  }

  router.post('/account/add/:factor', form, async (ctx, next) => {
    const factor = setupFactor(routeParam(ctx, 'factor'));
    if (!factor) {
      await next();
      return;
    }
    const input = readForm(ctx, plainForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const outcome = await factor.module.enrol.begin(v.factorCtx, {});
    if (outcome.status !== 'started') throw new NyckelError('invalid_input');
    ctx.status = 303;
    ctx.redirect(`/account/add/${factor.module.id}/${outcome.challengeId}`);
  });

  router.get('/account/add/:factor/:id', async (ctx, next) => {
    const factor = setupFactor(routeParam(ctx, 'factor'));
    if (!factor) {
      await next();
      return;
    }
    const v = await visit(ctx, { change: true });
    if (v) await renderSetup(ctx, v, factor.module, routeParam(ctx, 'id'));
  });

  router.post('/account/add/:factor/:id/verify', form, async (ctx, next) => {
    const factor = setupFactor(routeParam(ctx, 'factor'));
    if (!factor) {
      await next();
      return;
    }
    const input = readForm(ctx, codeForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const challengeId = routeParam(ctx, 'id');
    const label = input.label?.trim().slice(0, 60);
    const answer = factor.ui.page.readAnswer({ code: input.code }, false);
    if ('invalid' in answer) return renderSetup(ctx, v, factor.module, challengeId, { error: translator(v.locale)(answer.invalid), status: 400, label });
    if (!('code' in answer)) throw new NyckelError('invalid_input');
    const outcome = await factor.module.enrol.complete(v.factorCtx, { challengeId, code: answer.code, label });
    if (outcome.status !== 'verified') return renderSetup(ctx, v, factor.module, challengeId, { ...failure(ctx, v, outcome), label });
    await enrolled(ctx, v, factor.module.id, outcome.target ?? label ?? '');
  });

  router.post('/account/recovery-codes', form, async (ctx) => {
    const input = readForm(ctx, plainForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const recovery = engine.modules.get('recovery-code');
    if (!isRecoveryCodeModule(recovery)) throw new NyckelError('not_found');
    const codes = await recovery.regenerate(v.user.id);
    await deps.notifier.notify(v.user, v.locale, 'recovery_codes');
    await showRecoveryCodes(ctx, v, codes, 'regenerated');
  });
}
