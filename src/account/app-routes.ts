import type Router from '@koa/router';
import type { Middleware } from 'koa';
import type { Context } from 'koa';
import { NyckelError } from '../errors.ts';
import type { FactorModule } from '../factors/contract.ts';
import { isRecoveryCodeModule } from '../factors/recovery-code/index.ts';
import { translator } from '../i18n/i18n.ts';
import { assertCsrf } from '../security/csrf.ts';
import { readForm } from '../web/shared/forms.ts';
import { qrDataUrl } from '../web/shared/qr.ts';
import { Visit, codeForm, plainForm, type AccountKit, type AccountRouteDependencies } from './account-kit.ts';

/** Adding an authenticator app, and new recovery codes. */
export function registerAppRoutes(router: Router, deps: AccountRouteDependencies, kit: AccountKit, form: Middleware): void {
  const { engine, pages } = deps;
  const { visit, failure, enrolled, showRecoveryCodes } = kit;
  // --- Adding an authenticator app -----------------------------------------------------------------

  function totpModule(): FactorModule {
    const module = engine.modules.get('totp');
    if (!module?.enrol.setup) throw new NyckelError('not_found');
    return module;
  }

  async function renderAppSetup(ctx: Context, v: Visit, challengeId: string, extra: { error?: string; status?: number; label?: string } = {}) {
    const module = totpModule();
    const setup = await module.enrol.setup!(v.factorCtx, challengeId);
    if (!setup) throw new NyckelError('session_expired');
    pages.html(
      ctx,
      'mfa-enrol-app',
      v.locale,
      {
        csrfToken: ctx.state.csrfToken as string,
        factor: module.id,
        challengePath: `/account/add/totp/${challengeId}`,
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

  router.post('/account/add/totp', form, async (ctx) => {
    const input = readForm(ctx, plainForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const outcome = await totpModule().enrol.begin(v.factorCtx, {});
    if (outcome.status !== 'started') throw new NyckelError('invalid_input');
    ctx.status = 303;
    ctx.redirect(`/account/add/totp/${outcome.challengeId}`);
  });

  router.get('/account/add/totp/:id', async (ctx) => {
    const v = await visit(ctx, { change: true });
    if (v) await renderAppSetup(ctx, v, ctx.params.id);
  });

  router.post('/account/add/totp/:id/verify', form, async (ctx) => {
    const input = readForm(ctx, codeForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const code = input.code.replace(/\s+/g, '');
    const label = input.label?.trim().slice(0, 60);
    if (!/^\d{6}$/.test(code)) return renderAppSetup(ctx, v, ctx.params.id, { error: translator(v.locale)('factor_errors.format'), status: 400, label });
    const outcome = await totpModule().enrol.complete(v.factorCtx, { challengeId: ctx.params.id, code, label });
    if (outcome.status !== 'verified') return renderAppSetup(ctx, v, ctx.params.id, { ...failure(ctx, v, outcome), label });
    await enrolled(ctx, v, 'totp', outcome.target ?? label ?? '');
  });

  /** A wrong or spent answer as a message (a module's own wording first) and a status (the lock's Retry-After too). */

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
