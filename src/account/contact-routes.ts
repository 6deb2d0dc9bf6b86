import type Router from '@koa/router';
import type { Middleware } from 'koa';
import type { Context } from 'koa';
import { z } from 'zod';
import { NyckelError } from '../errors.ts';
import type { FactorModule } from '../factors/contract.ts';
import { maskEmail, maskPhone } from '../factors/shared/mask.ts';
import { translator } from '../i18n/i18n.ts';
import { assertCsrf } from '../security/csrf.ts';
import { readForm, routeParam } from '../web/shared/forms.ts';
import { UUID, Visit, codeForm, contactForm, firstUseOnly, plainForm, type AccountKit, type AccountRouteDependencies } from './account-kit.ts';

/** Contact addresses and numbers: add, prove by a code, remove. */
export function registerContactRoutes(router: Router, deps: AccountRouteDependencies, kit: AccountKit, form: Middleware): void {
  const { prisma, engine } = deps;
  const { visit, auditContext, changed, isLastRequiredMethod, overview, failure, enrolled, renderCodePage } = kit;
  // --- Contact addresses and numbers: add, prove by a code, remove ---------------------------------

  /** The module that proves an address or number (the email code's and the SMS module's enrolment). */
  function proving(kind: 'email' | 'phone'): FactorModule {
    const module = engine.modules.get(kind === 'email' ? 'email-code' : 'sms');
    if (!module) throw new NyckelError('not_found');
    return module;
  }

  async function startProof(ctx: Context, v: Visit, kind: 'email' | 'phone', targetId: string) {
    const outcome = await proving(kind).enrol.begin(v.factorCtx, { targetId });
    if (outcome.status === 'failed') return overview(ctx, v, failure(ctx, v, outcome, proving(kind)));
    ctx.status = 303;
    ctx.redirect(`/account/verify/${kind}/${outcome.challengeId}`);
  }

  function renderProof(ctx: Context, v: Visit, kind: 'email' | 'phone', challengeId: string, extra: { error?: string; status?: number } = {}) {
    const t = translator(v.locale);
    return renderCodePage(
      ctx,
      v,
      {
        challengeId,
        challengeFactor: `${kind}-enrolment`,
        path: `/account/verify/${kind}/${challengeId}`,
        factor: proving(kind).id,
        title: t(kind === 'email' ? 'account.verify_email_title' : 'account.verify_phone_title'),
        // The number or address is being added, not yet registered; the button proves it, it signs nobody in.
        codeSentKey: kind === 'phone' ? 'account.phone_code_sent' : 'mfa.code_sent',
        submitLabel: t('account.verify'),
        mask: kind === 'email' ? maskEmail : maskPhone,
      },
      extra,
    );
  }

  const contactKind = (value: string) => {
    if (value !== 'email' && value !== 'phone') throw new NyckelError('not_found');
    return value;
  };

  for (const kind of ['email', 'phone'] as const) {
    router.post(`/account/${kind}s`, form, (ctx) => addContact(ctx, kind));
    router.post(`/account/${kind}s/:id/verify`, form, (ctx) => proveContact(ctx, kind));
    router.post(`/account/${kind}s/:id/remove`, form, (ctx) => removeContact(ctx, kind));
  }

  async function addContact(ctx: Context, kind: 'email' | 'phone') {
    const input = readForm(ctx, contactForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const t = translator(v.locale);
    let row: { id: string };
    try {
      row =
        kind === 'email'
          ? await deps.accounts.addEmail(v.user, input.value.trim(), {
              maxAddresses: deps.settings.maxContactEmails,
              actor: 'user',
              ...auditContext(ctx),
            })
          : await deps.accounts.addPhone(v.user, input.value.trim(), { actor: 'user', ...auditContext(ctx) });
    } catch (error) {
      if (error instanceof z.ZodError)
        return overview(ctx, v, { error: t(kind === 'email' ? 'account.email_invalid' : 'factor_errors.invalid_number'), status: 400 });
      if (error instanceof NyckelError && error.code === 'conflict')
        return overview(ctx, v, { error: t(kind === 'email' ? 'account.email_conflict' : 'account.phone_conflict'), status: 409 });
      throw error;
    }
    await deps.notifier.notify(v.user, v.locale, 'contact_added', { contact: input.value.trim() });
    await startProof(ctx, v, kind, row.id);
  }

  async function ownContact(v: Visit, kind: 'email' | 'phone', id: string) {
    if (!UUID.test(id)) throw new NyckelError('not_found');
    const row =
      kind === 'email'
        ? await prisma.userEmail
            .findFirst({ where: { id, userId: v.user.id } })
            .then((r) => r && { id: r.id, value: r.address, verified: Boolean(r.verifiedAt) })
        : await prisma.userPhone.findFirst({ where: { id, userId: v.user.id } }).then((r) => r && { id: r.id, value: r.e164, verified: Boolean(r.verifiedAt) });
    if (!row) throw new NyckelError('not_found');
    return row;
  }

  async function proveContact(ctx: Context, kind: 'email' | 'phone') {
    const input = readForm(ctx, plainForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const row = await ownContact(v, kind, routeParam(ctx, 'id'));
    if (row.verified) throw new NyckelError('not_found');
    await startProof(ctx, v, kind, row.id);
  }

  async function removeContact(ctx: Context, kind: 'email' | 'phone') {
    const input = readForm(ctx, plainForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const row = await ownContact(v, kind, routeParam(ctx, 'id'));
    const t = translator(v.locale);
    if (kind === 'email' && row.value === v.user.email) return overview(ctx, v, { error: t('account.sign_in_address'), status: 409 });
    if (row.verified && (await isLastRequiredMethod(v))) return overview(ctx, v, { error: t('account.last_method'), status: 409 });
    if (kind === 'email') await deps.accounts.removeEmail(v.user, row.value, { actor: 'user', ...auditContext(ctx) });
    else await deps.accounts.removePhone(v.user, row.value, { actor: 'user', ...auditContext(ctx) });
    await changed(ctx, v, 'contact_removed', 'account.method_removed', { kind }, { contact: kind === 'email' ? row.value : maskPhone(row.value) });
  }

  router.get('/account/verify/:kind/:challengeId', async (ctx) => {
    const v = await visit(ctx, { change: true });
    if (v) await renderProof(ctx, v, contactKind(ctx.params.kind), ctx.params.challengeId);
  });

  router.post('/account/verify/:kind/:challengeId/verify', form, async (ctx) => {
    const input = readForm(ctx, codeForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const kind = contactKind(ctx.params.kind);
    const code = input.code.replace(/\s+/g, '');
    if (!/^\d{4,10}$/.test(code))
      return renderProof(ctx, v, kind, ctx.params.challengeId, { error: translator(v.locale)('factor_errors.format'), status: 400 });
    const outcome = firstUseOnly(await proving(kind).enrol.complete(v.factorCtx, { challengeId: ctx.params.challengeId, code }));
    if (outcome.status !== 'verified') return renderProof(ctx, v, kind, ctx.params.challengeId, failure(ctx, v, outcome));
    await enrolled(ctx, v, kind === 'email' ? 'email-code' : 'sms', outcome.target ? (kind === 'email' ? outcome.target : maskPhone(outcome.target)) : '');
  });
}
