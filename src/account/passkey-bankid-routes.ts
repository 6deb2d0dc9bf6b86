import type Router from '@koa/router';
import type { Middleware } from 'koa';
import type { Context } from 'koa';
import { NyckelError } from '../errors.ts';
import type { FactorModule } from '../factors/contract.ts';
import { translator } from '../i18n/i18n.ts';
import { pollView } from '../web/shared/poll-view.ts';
import { assertCsrf } from '../security/csrf.ts';
import { readForm } from '../web/shared/forms.ts';
import { scriptJson } from '../web/shared/script-json.ts';
import { Visit, credentialForm, plainForm, type AccountKit, type AccountRouteDependencies } from './account-kit.ts';

/** Adding a passkey (the WebAuthn ceremony) or binding a BankID. */
export function registerPasskeyAndBankIdRoutes(router: Router, deps: AccountRouteDependencies, kit: AccountKit, form: Middleware): void {
  const { engine, pages } = deps;
  const { visit, failure, enrolled } = kit;
  // --- Passkeys (the passkey module's WebAuthn ceremony, run by /assets/passkey.js) ----------------

  function passkeyModule(): FactorModule {
    const module = engine.modules.get('passkey');
    if (!module || module.kind !== 'webauthn') throw new NyckelError('not_found');
    return module;
  }

  async function renderPasskeySetup(ctx: Context, v: Visit, extra: { error?: string; status?: number; label?: string } = {}) {
    const outcome = await passkeyModule().enrol.begin(v.factorCtx, { label: extra.label });
    if (outcome.status !== 'started') throw new NyckelError('invalid_input');
    pages.html(
      ctx,
      'account-passkey',
      v.locale,
      {
        csrfToken: ctx.state.csrfToken as string,
        challengeId: outcome.challengeId,
        options: scriptJson(outcome.browser),
        label: extra.label,
        error: extra.error,
      },
      extra.status ?? 200,
    );
  }

  router.get('/account/add/passkey', async (ctx) => {
    const v = await visit(ctx, { change: true });
    if (v) await renderPasskeySetup(ctx, v);
  });

  router.post('/account/add/passkey/:id', form, async (ctx) => {
    const input = readForm(ctx, credentialForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const label = input.label?.trim().slice(0, 60);
    let credential: unknown;
    try {
      credential = JSON.parse(input.credential);
    } catch {
      return renderPasskeySetup(ctx, v, { error: translator(v.locale)('account.passkey_failed'), status: 400, label });
    }
    const outcome = await passkeyModule().enrol.complete(v.factorCtx, { challengeId: ctx.params.id, credential, label });
    if (outcome.status !== 'verified') return renderPasskeySetup(ctx, v, { ...failure(ctx, v, outcome, passkeyModule()), label });
    await enrolled(ctx, v, 'passkey', outcome.target ?? label ?? '');
  });

  // --- BankID: the personal number is bound by signing once with it --------------------------------

  function bankIdModule(): FactorModule {
    const module = engine.modules.get('bankid');
    if (!module || module.kind !== 'poll' || !deps.settings.bankid) throw new NyckelError('not_found');
    return module;
  }

  const bankIdPath = (challengeId: string) => `/account/add/bankid/${challengeId}`;

  async function renderBankId(
    ctx: Context,
    v: Visit,
    view: { challengeId?: string; launchUrl?: string; qr?: string; message?: string; error?: string; status?: number; arrived?: boolean },
  ) {
    const extras = await bankIdModule().pageModel?.(v.factorCtx, view.challengeId);
    pages.html(
      ctx,
      'mfa-bankid',
      v.locale,
      {
        csrfToken: ctx.state.csrfToken as string,
        factor: 'bankid',
        enrolling: true,
        challengePath: view.challengeId ? bankIdPath(view.challengeId) : undefined,
        launchUrl: view.launchUrl,
        qr: view.qr,
        message: view.message,
        error: view.error,
        arrived: view.arrived ?? false,
        extras,
        againPath: '/account/add/bankid',
        cancelHref: '/account',
      },
      view.status ?? 200,
    );
  }

  const bankIdView = (ctx: Context, v: Visit, challengeId: string) =>
    pollView(bankIdModule(), v.factorCtx, challengeId, ctx.query.mode, (outcome) => failure(ctx, v, outcome, bankIdModule()).error);

  router.get('/account/add/bankid', async (ctx) => {
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const outcome = await bankIdModule().enrol.begin(v.factorCtx, {});
    if (outcome.status === 'failed') return renderBankId(ctx, v, failure(ctx, v, outcome, bankIdModule()));
    const view = await bankIdView(ctx, v, outcome.challengeId);
    const launchUrl = typeof outcome.browser?.launchUrl === 'string' ? outcome.browser.launchUrl : undefined;
    await renderBankId(ctx, v, { challengeId: outcome.challengeId, launchUrl, qr: view.qr, message: view.message });
  });

  router.get('/account/add/bankid/:id/status', async (ctx) => {
    const v = await visit(ctx, { change: true });
    if (!v) return;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await bankIdView(ctx, v, ctx.params.id);
  });

  router.post('/account/add/bankid/:id/cancel', form, async (ctx) => {
    const input = readForm(ctx, plainForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    await bankIdModule().cancel?.(v.factorCtx, ctx.params.id);
    ctx.status = 204;
  });

  router.post('/account/add/bankid/:id/verify', form, async (ctx) => {
    const input = readForm(ctx, plainForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const outcome = await bankIdModule().enrol.complete(v.factorCtx, { challengeId: ctx.params.id });
    if (outcome.status === 'verified') return enrolled(ctx, v, 'bankid', outcome.target ?? '');
    if (outcome.status === 'failed') return renderBankId(ctx, v, failure(ctx, v, outcome, bankIdModule()));
    // Not confirmed yet: the page again, still polling.
    const view = await bankIdView(ctx, v, ctx.params.id);
    await renderBankId(ctx, v, { challengeId: ctx.params.id, qr: view.qr, message: view.message, arrived: true });
  });
}
