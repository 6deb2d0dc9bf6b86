import type Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { z } from 'zod';
import type { AuditLog } from '../../accounts/audit.ts';
import { NyckelError } from '../../errors.ts';
import type { SecondFactorPolicy } from '../../factors/policy.ts';
import type { PasskeyModule, PasswordlessOutcome } from '../../factors/passkey/index.ts';
import { translator } from '../../i18n/i18n.ts';
import type { Metrics } from '../../observability/metrics.ts';
import { assertCsrf } from '../../security/csrf.ts';
import { formBody, readForm, routeParam } from '../shared/forms.ts';
import type { SignInFlow } from './sign-in-flow.ts';
import type { PageRenderer } from '../../server/pages.ts';
import { answerFailureStatus, withRetryAfter } from '../shared/outcome-view.ts';
import { scriptJson } from '../shared/script-json.ts';

type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

const passkeyLoginForm = z.object({
  _csrf: z.string().max(200),
  token: z.string().max(1024).default(''),
  credential: z.string().max(32_768).default(''),
});

export interface PasskeyLoginDependencies {
  provider: () => Provider;
  policy: SecondFactorPolicy;
  audit: AuditLog;
  pages: PageRenderer;
  metrics: Pick<Metrics, 'login'>;
  flow: SignInFlow;
}

/**
 * A passkey instead of the password, for clients whose `mfa.passwordless` lists `passkey`: the
 * browser offers the discoverable passkeys it has for Nyckel, the chosen one names its user. Only an
 * assertion with user verification (PIN, biometrics) is accepted, and it then counts as two factors:
 * something held (the key: `hwk`/`swk`) and the verification (`user`); acr mfa.
 * Mounted on the factor router (prefix /interaction/:uid, CSRF protected).
 */
export function passwordlessRoutes(router: Router, deps: PasskeyLoginDependencies, form: ReturnType<typeof formBody>) {
  async function loginInteraction(ctx: Context): Promise<{ details: Details; module: PasskeyModule }> {
    const details = await deps.provider().interactionDetails(ctx.req, ctx.res);
    if (details.uid !== routeParam(ctx, 'uid') || details.prompt.name !== 'login') throw new NyckelError('session_expired');
    const module = deps.policy.passwordlessMethod(String(details.params.client_id));
    if (!module) throw new NyckelError('not_found');
    return { details, module };
  }

  async function render(ctx: Context, details: Details, module: PasskeyModule, error?: string, status = 200) {
    const clientId = String(details.params.client_id);
    const { options, token } = await module.passwordless.start(details.uid);
    deps.pages.html(
      ctx,
      'passkey/login-passkey',
      deps.pages.localeOf(ctx, details.params.ui_locales as string | undefined),
      {
        clientId,
        clientName: deps.pages.clientName(clientId) ?? clientId,
        uid: details.uid,
        csrfToken: ctx.state.csrfToken as string,
        token,
        // Inside <script type="application/json">: nothing in it may end the element.
        optionsJson: scriptJson(options),
        error,
      },
      status,
    );
  }

  router.get('/passkey-login', async (ctx) => {
    const { details, module } = await loginInteraction(ctx);
    await render(ctx, details, module);
  });

  router.post('/passkey-login', form, async (ctx) => {
    const { details, module } = await loginInteraction(ctx);
    const input = readForm(ctx, passkeyLoginForm);
    assertCsrf(ctx, input._csrf);
    const t = translator(deps.pages.localeOf(ctx, details.params.ui_locales as string | undefined));
    let credential: unknown = null;
    try {
      credential = input.credential ? JSON.parse(input.credential) : null;
    } catch {
      credential = null;
    }
    if (credential === null) return render(ctx, details, module, t(`factor_errors.${module.id}_format`), 400);
    const outcome = await module.passwordless.verify({ uid: details.uid, token: input.token, credential });
    const client = String(details.params.client_id);
    if (outcome.status === 'failed') {
      deps.metrics.login(outcome.reason === 'locked' ? 'locked' : 'factor_failed', module.id);
      await deps.audit.record('login.failed', { data: { client, method: module.id, reason: outcome.reason }, ip: ctx.ip, userAgent: ctx.get('user-agent') });
      const { status } = withRetryAfter(ctx, answerFailureStatus(outcome));
      return render(ctx, details, module, failure(t, module, outcome), status);
    }
    await deps.audit.record('factor.verified', {
      userId: outcome.user.id,
      data: { factor: module.id, passwordless: true },
      ip: ctx.ip,
      userAgent: ctx.get('user-agent'),
    });
    // Something held and the user's verification: two factors in one step, bound to the passkey's user.
    await deps.flow.begin(details, {
      factor: module.id,
      channel: module.channel,
      amr: [...outcome.amr],
      at: new Date().toISOString(),
      userId: outcome.user.id,
      multiFactor: true,
    });
    if (
      (await deps.flow.finish(ctx, details, {
        user: outcome.user,
        method: module.id,
        locale: deps.pages.localeOf(ctx, details.params.ui_locales as string | undefined),
      })) === 'unsatisfied'
    )
      throw new NyckelError('session_expired');
  });
}

/** A refused passkey sign-in in words (its own: no password was given, so "wrong code" would mislead). */
function failure(t: ReturnType<typeof translator>, module: PasskeyModule, outcome: Extract<PasswordlessOutcome, { status: 'failed' }>): string {
  const minutes = Math.max(1, Math.ceil((outcome.retryAfterSeconds ?? 60) / 60));
  if (outcome.reason === 'wrong_code') return t(`factors.${module.id}.passwordless_refused`);
  if (outcome.reason === 'user_not_verified') return t(`factors.${module.id}.passwordless_needs_verification`);
  if (outcome.reason === 'locked') return t('factor_errors.locked', { minutes });
  return t(`factor_errors.${module.id}_${outcome.reason}`);
}
