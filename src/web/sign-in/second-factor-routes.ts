import type { ClientDirectory } from '../../clients/directory.ts';
import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { z } from 'zod';
import type { Accounts } from '../../accounts/accounts.ts';
import type { AuditLog } from '../../accounts/audit.ts';
import type { AccountNotifier } from '../../accounts/notify.ts';
import type { FactorId } from '../../clients/clients-file.ts';
import { NyckelError } from '../../errors.ts';
import type { FactorModule } from '../../factors/contract.ts';
import type { FactorEngine } from '../../factors/engine.ts';
import type { SecondFactorPolicy } from '../../factors/policy.ts';
import type { ChallengeStore } from '../../factors/shared/challenges.ts';
import { factorStrength, type SignIns } from '../../factors/sign-ins.ts';
import type { FactorUi } from '../../factors/ui-contract.ts';
import type { Metrics } from '../../observability/metrics.ts';
import { assertCsrf, csrfProtection } from '../../security/csrf.ts';
import type { SecretBox } from '../../security/crypto.ts';
import type { PageRenderer } from '../../server/pages.ts';
import type { Signals } from '../../storage/signals.ts';
import { formBody, readForm, routeParam } from '../shared/forms.ts';
import { challengeRoutes } from './challenge-routes.ts';
import { enrolRoutes } from './enrol-routes.ts';
import { factorRouteHost } from './factor-route-host.ts';
import { forgotDeviceRoutes } from './forgot-device-routes.ts';
import { pageHost } from './page-host.ts';
import { passwordlessRoutes } from './passwordless-routes.ts';
import { respond } from './respond.ts';
import { CURRENT_METHOD, secondStepEntry } from './second-step-entry.ts';
import type { SignInFlow } from './sign-in-flow.ts';
import { endedSignIns, signInLoader, signInState, type SignInState } from './sign-in-state.ts';
import { SignInSteps } from './sign-in-steps.ts';

export interface SecondFactorRouteDependencies {
  /** The services' home pages (the way back from a sign-in already ended). */
  clients: Pick<ClientDirectory, 'homeOf'>;
  /** Wakes a waiting status request when its challenge is answered (on any node). */
  signals: Signals;
  provider: () => Provider;
  engine: FactorEngine;
  /** Every second-factor question of a sign-in (needed, offered, enrollable, fallbacks). */
  policy: SecondFactorPolicy;
  /** The page side of every factor, by id (src/factors/<id>/ui.ts). */
  uis: ReadonlyMap<FactorId, FactorUi>;
  /** The sign-in records, bound to one user each. */
  signIns: SignIns;
  /** Binds sign-ins to their user and finishes them (the one place an interaction ends with a login). */
  flow: SignInFlow;
  accounts: Accounts;
  audit: AuditLog;
  challenges: ChallengeStore;
  pages: PageRenderer;
  box: SecretBox;
  issuer: string;
  maxBodyBytes: number;
  /** Mails the user about a "Forgot your device?" sign-in. */
  notifier?: AccountNotifier;
  /** The state of a queued message, to tell the user when it could not be sent yet. */
  deliveryState: (id: string) => Promise<{ status: 'queued' | 'sent' | 'failed'; lastError: string | null } | undefined>;
  /** Sign-ins completed with a second factor, and failed answers. */
  metrics: Metrics;
}

const csrfField = z.string().max(200);
const startForm = z.object({
  _csrf: csrfField,
  target: z.string().max(100).optional(),
  typed: z.string().max(320).optional(),
  remember: z.literal('yes').optional(),
});
const plainForm = z.object({ _csrf: csrfField });
// Any id is checked against the factors this sign-in may use; an unknown one is not found.
const factorParam = z.string().regex(/^[a-z][a-z0-9-]{0,39}$/);

/**
 * The second step of signing in, the same for every factor: choose a method, start its challenge,
 * answer it, and finish the login once. What a factor's pages look like and how its answer reads is
 * its `FactorUi`'s business; which methods are offered is the policy's.
 */
export function factorRoutes(deps: SecondFactorRouteDependencies) {
  const { policy, uis } = deps;
  const router = new Router({ prefix: '/interaction/:uid' });
  const form = formBody(deps.maxBodyBytes);
  router.use(csrfProtection(deps.box));
  router.use(endedSignIns(deps));
  const { signedIn, signInOf } = signInLoader(deps);
  const steps = new SignInSteps({ ...deps, uis });
  const hostFor = (ctx: Context, state: SignInState, module: FactorModule, enrolling: boolean, offered?: Promise<FactorModule[]>) =>
    pageHost({ ...deps, steps }, ctx, state, module, uiOf(module).page, enrolling, offered);
  const uiOf = (module: FactorModule): FactorUi => {
    const ui = uis.get(module.id);
    if (!ui) throw new NyckelError('not_found');
    return ui;
  };

  /** The factor named in the path, when this sign-in offers it. */
  async function offeredFactor(ctx: Context, state: SignInState, id: string = routeParam(ctx, 'factor')) {
    const parsed = factorParam.safeParse(id);
    if (!parsed.success) throw new NyckelError('not_found');
    // Judged on the rows read with the sign-in: this is the first question of the request, before it writes anything.
    const offered = policy.offered(state.user, state.challengeCtx.clientId, { ...state, held: state.challengeCtx.held });
    const module = (await offered).find((m) => m.id === parsed.data);
    if (!module) throw new NyckelError('not_found');
    return { module, page: uiOf(module).page, host: hostFor(ctx, state, module, false, offered) };
  }

  // Before the routes of /mfa/:factor, which would take "forgot" and "enrol" for a factor's name.
  forgotDeviceRoutes(router, { signedIn, steps, policy, challenges: deps.challenges, audit: deps.audit, notifier: deps.notifier, form });
  enrolRoutes(router, { signedIn, steps, policy, engine: deps.engine, audit: deps.audit, form, uiOf, hostFor, service: deps.pages.branding.name });

  router.get('/mfa', signedIn, async (ctx) => {
    const state = signInState(ctx);
    const { uid } = state.details;
    const entry = await secondStepEntry(ctx, policy, {
      user: state.user,
      uid,
      clientId: state.challengeCtx.clientId,
      progress: state,
      choose: Boolean(ctx.query.choose),
    });
    if ('redirect' in entry) return ctx.redirect(entry.redirect);
    const { modules: offered, purpose } = entry.choose;
    const methods = offered.map((m) => ({ id: m.id, name: state.t(`factors.${m.id}.name`), hint: state.t(`factors.${m.id}.hint`) }));
    const intro = purpose === 'proof' ? state.t('mfa.proof_intro', { client: state.frame.clientName }) : undefined;
    steps.render(ctx, state, { template: 'mfa-choose', model: { ...state.frame, methods, intro } });
  });

  router.get('/mfa/:factor', signedIn, async (ctx) => {
    const state = signInState(ctx);
    const { module, page, host } = await offeredFactor(ctx, state);
    ctx.cookies.set(CURRENT_METHOD, module.id, { httpOnly: true, sameSite: 'lax', path: `/interaction/${state.details.uid}` });
    await respond(ctx, steps, state, module, await page.begin(host));
  });

  router.post('/mfa/:factor/start', form, signedIn, async (ctx) => {
    const state = signInState(ctx);
    const input = readForm(ctx, startForm);
    assertCsrf(ctx, input._csrf);
    const { module, page, host } = await offeredFactor(ctx, state);
    if (!page.start) throw new NyckelError('not_found');
    const typed = input.typed?.trim();
    if (input.target || typed) steps.rememberChoice(ctx, state, input.remember ?? 'no');
    await respond(ctx, steps, state, module, await page.start(host, { targetId: input.target, typed }));
  });

  challengeRoutes(router, { signedIn, steps, form, offeredFactor, modules: deps.engine.modules, signals: deps.signals });

  router.post('/mfa/continue', form, signedIn, async (ctx) => {
    const state = signInState(ctx);
    const input = readForm(ctx, plainForm);
    assertCsrf(ctx, input._csrf);
    if (factorStrength(state.verified) < 2) return steps.redirect(ctx, `/interaction/${state.details.uid}/mfa`);
    return steps.finish(ctx, state, state.verified.at(-1)!.factor);
  });

  const own = factorRouteHost({ signInOf, steps, challenges: deps.challenges, pages: deps.pages, form, offered: offeredFactor });
  for (const ui of uis.values()) ui.routes?.(router, own);

  passwordlessRoutes(router, { provider: deps.provider, policy, audit: deps.audit, pages: deps.pages, metrics: deps.metrics, flow: deps.flow }, form);
  return router;
}
