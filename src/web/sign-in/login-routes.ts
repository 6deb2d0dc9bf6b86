import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import type Provider from 'oidc-provider';
import { z } from 'zod';
import type { Accounts, SignInNames } from '../../accounts/accounts.ts';
import type { User } from '../../generated/prisma/client.ts';
import type { AuditLog } from '../../accounts/audit.ts';
import type { ClientDirectory } from '../../clients/directory.ts';
import { NyckelError, isNyckelError } from '../../errors.ts';
import { translator } from '../../i18n/i18n.ts';
import { assertCsrf, csrfProtection } from '../../security/csrf.ts';
import type { SecretBox } from '../../security/crypto.ts';
import { LoginThrottle } from '../../accounts/login-throttle.ts';
import type { Metrics } from '../../observability/metrics.ts';
import { formBody, readForm, routeParam } from '../shared/forms.ts';
import type { Consents } from '../../accounts/consents.ts';
import { askedOf, consent } from './consent.ts';
import { renderUnavailable } from './unavailable.ts';
import { secondStepEntry } from './second-step-entry.ts';
import { passwordFactor } from '../../factors/sign-ins.ts';
import { endedSignIns } from './sign-in-state.ts';
import type { SignIns } from '../../factors/sign-ins.ts';
import { completeInteraction } from './interaction-result.ts';
import type { SecondFactorPolicy } from '../../factors/policy.ts';
import type { SignInFlow } from './sign-in-flow.ts';
import { CLIENT_COOKIE, type PageRenderer } from '../../server/pages.ts';

type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

export interface InteractionDependencies {
  provider: () => Provider;
  accounts: Accounts;
  audit: AuditLog;
  throttle: LoginThrottle;
  clients: ClientDirectory;
  pages: PageRenderer;
  maxBodyBytes: number;
  box: SecretBox;
  policy: SecondFactorPolicy;
  /** Binds the sign-in to its user after the first step, and finishes it (the one place). */
  flow: SignInFlow;
  metrics: Metrics;
  /** What the sign-in form takes when the client does not say (NYCKEL_SIGN_IN_NAME). */
  signInNames: SignInNames;
  /** The sign-in records (a request of one already ended gets the "already signed in" page). */
  signIns: Pick<SignIns, 'load'>;
  /** Consent asked once per user and relying party. */
  consents: Consents;
  /** "Forgot your password?" is offered (NYCKEL_PASSWORD_RESET). */
  passwordReset: boolean;
}

/** What this client's sign-in form takes: its `sign_in_name`, else the installation's. */
export function signInNamesOf(deps: Pick<InteractionDependencies, 'clients' | 'signInNames'>, details: Details): SignInNames {
  return deps.clients.get(String(details.params.client_id))?.sign_in_name ?? deps.signInNames;
}

const csrfField = z.string().max(200);
const loginForm = z.object({
  _csrf: csrfField,
  username: z.string().max(320).optional(),
  /** The field's name on pages rendered before user names (open in a browser across an upgrade). */
  email: z.string().max(320).optional(),
  password: z.string().max(4096).default(''),
});
const consentForm = z.object({ _csrf: csrfField, decision: z.enum(['allow', 'deny']) });
const abortForm = z.object({ _csrf: csrfField });

function requestContext(ctx: Context) {
  return { ip: ctx.ip, userAgent: ctx.get('user-agent') };
}

/** The interaction of this browser; a missing, expired or foreign one is session_expired. */
export async function loadInteraction(deps: Pick<InteractionDependencies, 'provider'>, ctx: Context): Promise<Details> {
  const details = await deps.provider().interactionDetails(ctx.req, ctx.res);
  if (details.uid !== routeParam(ctx, 'uid')) throw new NyckelError('session_expired');
  ctx.cookies.set(CLIENT_COOKIE, typeof details.params.client_id === 'string' ? details.params.client_id : '', {
    httpOnly: true,
    sameSite: 'lax',
    overwrite: true,
  });
  return details;
}

/** What every page of the first step shows (language, client name, the interaction, the CSRF token). */
export function frameOf(pages: PageRenderer, ctx: Context, details: Details) {
  const clientId = String(details.params.client_id);
  return {
    locale: pages.localeOf(ctx, details.params.ui_locales as string | undefined),
    clientId,
    clientName: pages.clientName(clientId) ?? clientId,
    uid: details.uid,
    csrfToken: ctx.state.csrfToken as string,
  };
}

/** The user's answer to the consent page, and "Cancel" on any page: the interaction ends without a login. */
function decisionRoutes(
  router: Router,
  deps: { form: Middleware; interaction: (ctx: Context) => Promise<Details>; grantConsent: (details: Details) => Promise<string>; consents: Consents },
) {
  const { form, interaction } = deps;
  router.post('/consent', form, async (ctx) => {
    const details = await interaction(ctx);
    const input = readForm(ctx, consentForm);
    assertCsrf(ctx, input._csrf);
    if (details.prompt.name !== 'consent') throw new NyckelError('session_expired');
    if (input.decision === 'deny') {
      return completeInteraction(ctx, details, { error: 'access_denied', error_description: 'The user denied access' });
    }
    const grantId = await deps.grantConsent(details);
    if (details.session?.accountId)
      await deps.consents.remember(details.session.accountId, String(details.params.client_id), askedOf(details), requestContext(ctx));
    return completeInteraction(ctx, details, { consent: { grantId } });
  });

  router.post('/abort', form, async (ctx) => {
    const details = await interaction(ctx);
    const input = readForm(ctx, abortForm);
    assertCsrf(ctx, input._csrf);
    return completeInteraction(ctx, details, { error: 'access_denied', error_description: 'The user cancelled the sign-in' });
  });
}

export function interactionRoutes(deps: InteractionDependencies): Router {
  const { accounts, audit, throttle, clients, pages, metrics } = deps;
  const router = new Router({ prefix: '/interaction/:uid' });
  const form = formBody(deps.maxBodyBytes);
  router.use(csrfProtection(deps.box));
  router.use(endedSignIns(deps));

  const interaction = (ctx: Context) => loadInteraction(deps, ctx);
  const view = (ctx: Context, details: Details) => frameOf(pages, ctx, details);

  function renderLogin(ctx: Context, details: Details, options: { name?: string; errorKey?: string; minutes?: number; status?: number } = {}) {
    const base = view(ctx, details);
    const t = translator(base.locale);
    const names = signInNamesOf(deps, details);
    pages.html(
      ctx,
      'login',
      base.locale,
      {
        ...base,
        name: options.name ?? details.params.login_hint ?? '',
        nameLabel: t(`login.name_label.${names}`),
        nameIsEmail: names === 'email',
        passwordReset: deps.passwordReset,
        error: options.errorKey ? t(options.errorKey, { minutes: options.minutes ?? 1, name: t(`login.name_word.${names}`) }) : undefined,
        passkeyLogin: Boolean(deps.policy.passwordlessMethod(String(details.params.client_id))),
      },
      options.status,
    );
  }

  const finish = completeInteraction;
  const { grantConsent, consentLines } = consent({ provider: deps.provider, clients, pages });

  router.get('/', async (ctx) => {
    const details = await interaction(ctx);
    if (details.prompt.name === 'login') {
      // Step-up inside an existing session: the password was given; only the second factor is missing.
      const sessionAccount = details.session?.accountId;
      if (sessionAccount && details.prompt.reasons.length === 1 && details.prompt.reasons[0] === 'second_factor_required') {
        const user = await accounts.findById(sessionAccount);
        if (user && user.status === 'active') return continueAfterFirstStep(ctx, details, user);
      }
      return renderLogin(ctx, details);
    }
    if (details.prompt.name === 'consent') {
      const clientId = String(details.params.client_id);
      // First-party apps ask no consent; others ask once, until the user revokes it on the account pages.
      const accountId = details.session?.accountId;
      // prompt=consent: the relying party wants the question asked, whatever was allowed before.
      const askAnyway = typeof details.params.prompt === 'string' && details.params.prompt.split(' ').includes('consent');
      const left = accountId && !askAnyway ? await deps.consents.notYetAllowed(accountId, clientId, askedOf(details)) : askedOf(details);
      const nothingNew = left.scopes.length === 0 && left.claims.length === 0 && Object.keys(left.resources).length === 0;
      if (clients.get(clientId)?.first_party || (accountId && !askAnyway && nothingNew)) {
        return finish(ctx, details, { consent: { grantId: await grantConsent(details) } });
      }
      const base = view(ctx, details);
      return pages.html(ctx, 'consent', base.locale, { ...base, scopes: consentLines(ctx, details, left) });
    }
    throw new NyckelError('invalid_request', `unsupported prompt ${details.prompt.name}`);
  });

  router.post('/login', form, async (ctx) => {
    const details = await interaction(ctx);
    const input = readForm(ctx, loginForm);
    assertCsrf(ctx, input._csrf);
    if (details.prompt.name !== 'login') throw new NyckelError('session_expired');
    const name = (input.username ?? input.email ?? '').trim();
    if (!name || !input.password) return renderLogin(ctx, details, { name, errorKey: 'login.missing', status: 400 });
    // One lookup, then the throttle of that account (whichever of its names was typed), then the hash.
    const found = await accounts.findByLogin(name, signInNamesOf(deps, details));
    let attempt;
    try {
      attempt = await throttle.beginAttempt(LoginThrottle.keyOf(found, name), ctx.ip);
    } catch (error) {
      if (!isNyckelError(error) || error.code !== 'rate_limited') throw error;
      metrics.rateLimitRefused('login_throttle');
      metrics.login('rate_limited', 'password');
      await audit.record('login.throttled', { userId: found?.id, data: { name: name.toLowerCase() }, ...requestContext(ctx) });
      ctx.set('Retry-After', String(error.retryAfterSeconds ?? 60));
      return renderLogin(ctx, details, {
        name,
        errorKey: 'errors.rate_limited',
        minutes: Math.ceil((error.retryAfterSeconds ?? 60) / 60),
        status: 429,
      });
    }
    const user = await accounts.passwordMatches(found, input.password);
    if (!user) {
      metrics.login('wrong_password', 'password');
      await audit.record('login.failed', { userId: found?.id, data: { name: name.toLowerCase() }, ...requestContext(ctx) });
      return renderLogin(ctx, details, { name, errorKey: 'login.invalid', status: 401 });
    }
    await attempt.succeeded();
    return continueAfterFirstStep(ctx, details, user);
  });

  /** The password (or an existing session) is done: finish, or go on to the second factor. */
  async function continueAfterFirstStep(ctx: Context, details: Details, user: User) {
    const next = await deps.flow.afterFirstStep(ctx, details, user);
    if (next.next === 'unavailable') {
      await audit.record('mfa.unavailable', { userId: user.id, data: { client: details.params.client_id }, ...requestContext(ctx) });
      return renderUnavailable(deps, ctx, view(ctx, details), String(details.params.client_id));
    }
    if (next.next === 'finish' && next.remembered) {
      await audit.record('mfa.remembered_browser', { userId: user.id, data: { client: details.params.client_id }, ...requestContext(ctx) });
    }
    const finishing = { user, method: 'password', locale: view(ctx, details).locale, recorded: next.recorded };
    if (next.next === 'finish' && (await deps.flow.finish(ctx, details, finishing)) === 'finished') return;
    ctx.status = 303;
    // Straight to where /mfa would send the browser on to, one request less; /mfa when it shows the list.
    const progress = { pendingPassword: false, verified: [passwordFactor(user.id)] };
    const clientId = String(details.params.client_id);
    const entry =
      next.next === 'second-factor'
        ? await secondStepEntry(ctx, deps.policy, { user, uid: details.uid, clientId, progress, choose: false, offer: next.offer })
        : undefined;
    return ctx.redirect(entry && 'redirect' in entry ? entry.redirect : `/interaction/${details.uid}/mfa`);
  }

  decisionRoutes(router, { form, interaction, grantConsent, consents: deps.consents });
  return router;
}
