import type Router from '@koa/router';
import type { Middleware } from 'koa';
import type { Context } from 'koa';
import { z } from 'zod';
import { NyckelError } from '../errors.ts';
import type { FactorModule } from '../factors/contract.ts';
import { maskEmail } from '../factors/shared/mask.ts';
import { translator } from '../i18n/i18n.ts';
import { assertCsrf } from '../security/csrf.ts';
import { readForm } from '../web/shared/forms.ts';
import { LOST_DEVICE_PATH } from '../web/shared/paths.ts';
import { resetSecondFactors } from '../accounts/reset-factors.ts';
import { Visit, codeForm, csrfField, firstUseOnly, type AccountKit, type AccountRouteDependencies } from './account-kit.ts';

/** "Delete all my devices": the password and an email code. */
export function registerLostDeviceRoutes(router: Router, deps: AccountRouteDependencies, kit: AccountKit, form: Middleware): void {
  const { prisma, engine, pages, audit, sessions } = deps;
  const { visit, auditContext, failure, renderCodePage } = kit;
  // --- Delete all my devices (EU Login's PANIC): password + an email code ---------------------------

  function emailCodeModule(): FactorModule {
    const module = engine.modules.get('email-code');
    if (!module) throw new NyckelError('not_found');
    return module;
  }

  async function renderLostDevice(ctx: Context, v: Visit, extra: { error?: string; status?: number } = {}) {
    const targets = await emailCodeModule().targets(v.user);
    pages.html(ctx, 'account-lost-device', v.locale, { csrfToken: ctx.state.csrfToken as string, targets, error: extra.error }, extra.status ?? 200);
  }

  router.get(LOST_DEVICE_PATH, async (ctx) => {
    const v = await visit(ctx, { change: true, passwordOnly: true });
    if (v) await renderLostDevice(ctx, v);
  });

  router.post(`${LOST_DEVICE_PATH}/start`, form, async (ctx) => {
    const input = readForm(ctx, z.object({ _csrf: csrfField, target: z.string().max(100).default('') }));
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true, passwordOnly: true });
    if (!v) return;
    const outcome = await emailCodeModule().start(v.factorCtx, { targetId: input.target });
    if (outcome.status === 'failed') return renderLostDevice(ctx, v, failure(ctx, v, outcome, emailCodeModule()));
    ctx.status = 303;
    ctx.redirect(`${LOST_DEVICE_PATH}/${outcome.challengeId}`);
  });

  function renderLostDeviceCode(ctx: Context, v: Visit, challengeId: string, extra: { error?: string; status?: number } = {}) {
    const t = translator(v.locale);
    return renderCodePage(
      ctx,
      v,
      {
        challengeId,
        challengeFactor: 'email-code',
        path: `${LOST_DEVICE_PATH}/${challengeId}`,
        factor: 'email-code',
        title: t('account.lost_device_title'),
        prompt: t('account.lost_device_confirm'),
        submitLabel: t('account.lost_device_submit'),
        mask: maskEmail,
      },
      extra,
    );
  }

  router.get(`${LOST_DEVICE_PATH}/:challengeId`, async (ctx) => {
    const v = await visit(ctx, { change: true, passwordOnly: true });
    if (v) await renderLostDeviceCode(ctx, v, ctx.params.challengeId);
  });

  router.post(`${LOST_DEVICE_PATH}/:challengeId/verify`, form, async (ctx) => {
    const input = readForm(ctx, codeForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true, passwordOnly: true });
    if (!v) return;
    const code = input.code.replace(/\s+/g, '');
    if (!/^\d{4,10}$/.test(code))
      return renderLostDeviceCode(ctx, v, ctx.params.challengeId, { error: translator(v.locale)('factor_errors.format'), status: 400 });
    const outcome = firstUseOnly(await emailCodeModule().verify(v.factorCtx, { challengeId: ctx.params.challengeId, code }));
    if (outcome.status !== 'verified') return renderLostDeviceCode(ctx, v, ctx.params.challengeId, failure(ctx, v, outcome));
    const removed = await resetSecondFactors(
      prisma,
      audit,
      v.user.id,
      {
        reason: 'the user deleted all their devices (lost device)',
        actor: 'user',
        keepSessionUid: await sessions.providerSessionUid(ctx),
        ...auditContext(ctx),
      },
      deps.accounts.revokeElsewhere,
    );
    // The user may now enrol again without a second factor, in this session.
    sessions.write(ctx, { ...v.session, noFactorAtSignIn: true, seenAt: Date.now() });
    await deps.notifier.notify(v.user, v.locale, 'devices_deleted', { count: removed.factors + removed.phones });
    ctx.status = 303;
    ctx.redirect('/account?done=devices_deleted');
  });
}
