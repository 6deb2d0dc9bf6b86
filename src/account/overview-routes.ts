import type Router from '@koa/router';
import type { Middleware } from 'koa';
import { z } from 'zod';
import { NyckelError } from '../errors.ts';
import { translator } from '../i18n/i18n.ts';
import { assertCsrf } from '../security/csrf.ts';
import { readForm } from '../web/shared/forms.ts';
import { namedEnrolments, UUID, Visit, csrfField, labelForm, moveForm, plainForm, type AccountKit, type AccountRouteDependencies } from './account-kit.ts';

/** The overview, sign-out, the order of methods, and renaming or removing a named enrolment. */
export function registerOverviewRoutes(router: Router, deps: AccountRouteDependencies, kit: AccountKit, form: Middleware): void {
  const { prisma, engine, sessions, signIn } = deps;
  const { visit, changed, isLastRequiredMethod, overview } = kit;
  router.get('/account', async (ctx) => {
    const v = await visit(ctx);
    if (v) await overview(ctx, v);
  });

  router.post('/account/logout', form, async (ctx) => {
    const input = readForm(ctx, plainForm);
    assertCsrf(ctx, input._csrf);
    const session = await sessions.read(ctx);
    sessions.clear(ctx);
    ctx.status = 303;
    ctx.redirect(session ? await signIn.endSessionUrl(session) : '/account/signed-out');
  });

  // --- Order of methods ---------------------------------------------------------------------------

  router.post('/account/methods/:factor/move', form, async (ctx) => {
    const input = readForm(ctx, moveForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const order = (await engine.methodsOf(v.user)).filter((m) => m.channel !== 'backup').map((m) => m.id);
    const index = order.indexOf(ctx.params.factor);
    if (index < 0) throw new NyckelError('not_found');
    const [moved] = order.splice(index, 1);
    const to = input.direction === 'top' ? 0 : input.direction === 'up' ? Math.max(0, index - 1) : Math.min(order.length, index + 1);
    order.splice(to, 0, moved);
    await engine.setMethodOrder(v.user.id, order);
    await changed(ctx, v, 'methods_reordered', 'account.methods_reordered', { order }, { method: translator(v.locale)(`factors.${moved}.name`) });
  });

  /** A new order as a whole (dragged on the page): the same methods, in another order. */
  router.post('/account/methods/order', form, async (ctx) => {
    const input = readForm(ctx, z.object({ _csrf: csrfField, order: z.string().max(300) }));
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const current = (await engine.methodsOf(v.user)).filter((m) => m.channel !== 'backup').map((m) => m.id);
    const order = input.order.split(',');
    if (order.length !== current.length || [...order].sort().join() !== [...current].sort().join()) {
      return overview(ctx, v, { error: translator(v.locale)('account.order_invalid'), status: 400 });
    }
    await engine.setMethodOrder(v.user.id, order);
    await changed(ctx, v, 'methods_reordered', 'account.methods_reordered', { order }, { method: translator(v.locale)(`factors.${order[0]}.name`) });
  });

  // --- Named enrolments (apps, passkeys): rename, remove -------------------------------------------

  async function ownEnrolment(v: Visit, id: string) {
    if (!UUID.test(id)) throw new NyckelError('not_found');
    const row = await prisma.factorEnrolment.findFirst({ where: { id, userId: v.user.id, confirmed: true, type: { in: namedEnrolments(deps) } } });
    if (!row) throw new NyckelError('not_found');
    return row;
  }

  router.post('/account/enrolments/:id/rename', form, async (ctx) => {
    const input = readForm(ctx, labelForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const row = await ownEnrolment(v, ctx.params.id);
    const label = input.label.trim();
    if (label.length === 0 || label.length > 60) return overview(ctx, v, { error: translator(v.locale)('account.label_invalid'), status: 400 });
    await prisma.factorEnrolment.update({ where: { id: row.id }, data: { label } });
    await changed(ctx, v, 'method_renamed', 'account.method_renamed', { factor: row.type, id: row.id }, { method: label });
  });

  router.post('/account/enrolments/:id/remove', form, async (ctx) => {
    const input = readForm(ctx, plainForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const row = await ownEnrolment(v, ctx.params.id);
    if (await isLastRequiredMethod(v)) return overview(ctx, v, { error: translator(v.locale)('account.last_method'), status: 409 });
    await prisma.factorEnrolment.deleteMany({ where: { id: row.id, userId: v.user.id } });
    await changed(ctx, v, 'method_removed', 'account.method_removed', { factor: row.type, id: row.id }, { method: row.label });
  });
}
