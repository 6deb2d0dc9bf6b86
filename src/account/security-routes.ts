import { LoginThrottle } from '../accounts/login-throttle.ts';
import type Router from '@koa/router';
import type { Middleware } from 'koa';
import type { Context } from 'koa';
import { checkPassword } from '../accounts/password-policy.ts';
import { NyckelError } from '../errors.ts';
import { translator } from '../i18n/i18n.ts';
import { assertCsrf } from '../security/csrf.ts';
import { readForm } from '../web/shared/forms.ts';
import { OidcAtRest } from '../storage/oidc-at-rest.ts';
import { endedSessionsOf } from '../accounts/revoke-access.ts';
import { UUID, Visit, passwordForm, plainForm, type AccountKit, type AccountRouteDependencies } from './account-kit.ts';

/** A Session row deleted: the part of its payload kept in clear (account, per-app sids). */
type EndedRow = { payload: unknown };

/** Remembered browsers, other sessions, and the password. */
export function registerSecurityRoutes(router: Router, deps: AccountRouteDependencies, kit: AccountKit, form: Middleware): void {
  const { prisma, pages, sessions } = deps;
  const { visit, auditContext, changed } = kit;
  // --- Browsers, sessions, password ----------------------------------------------------------------

  router.post('/account/browsers/forget', form, async (ctx) => {
    const input = readForm(ctx, plainForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const count = await deps.accounts.forgetBrowsers(v.user, { actor: 'user', ...auditContext(ctx) });
    await deps.notifier.notify(v.user, v.locale, 'browsers_forgotten', { count });
    ctx.status = 303;
    ctx.redirect('/account?done=browsers_forgotten');
  });

  router.post('/account/browsers/:id/forget', form, async (ctx) => {
    const input = readForm(ctx, plainForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    if (!UUID.test(ctx.params.id)) throw new NyckelError('not_found');
    const count = await deps.remembered.revoke(v.user.id, ctx.params.id);
    if (count === 0) throw new NyckelError('not_found');
    await changed(ctx, v, 'browsers_forgotten', 'user.browsers_forgotten', { count }, { count });
  });

  router.post('/account/sessions/:uid/end', form, async (ctx) => {
    const input = readForm(ctx, plainForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const uid = ctx.params.uid;
    // The session of this page is ended with "Sign out", not here.
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(uid) || uid === (await sessions.providerSessionUid(ctx))) throw new NyckelError('not_found');
    const ended = await prisma.$queryRaw<EndedRow[]>`
      DELETE FROM oidc_models WHERE type = 'Session' AND uid = ${uid} AND payload->>'accountId' = ${v.user.id} RETURNING payload`;
    if (ended.length === 0) throw new NyckelError('not_found');
    await sessionsEnded(ctx, v, ended);
  });

  router.post('/account/sessions/end-others', form, async (ctx) => {
    const input = readForm(ctx, plainForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    // (Rows are keyed by the hash of the session id: src/storage/oidc-at-rest.ts.)
    const thisSession = new OidcAtRest(deps.box).storedId('Session', v.session.providerSession);
    const ended = await prisma.$queryRaw<EndedRow[]>`
      DELETE FROM oidc_models WHERE type = 'Session' AND payload->>'accountId' = ${v.user.id} AND id <> ${thisSession} RETURNING payload`;
    await sessionsEnded(ctx, v, ended);
  });

  /** The apps of the ended sessions are told (back-channel logout), then the change is recorded and shown. */
  async function sessionsEnded(ctx: Context, v: Visit, ended: EndedRow[]) {
    await deps.accounts.revokeElsewhere({ grantIds: [], endedSessions: endedSessionsOf(ended.map((row) => row.payload)) });
    await changed(ctx, v, 'sessions_ended', 'account.sessions_ended', { count: ended.length }, { count: ended.length });
  }

  function renderPassword(ctx: Context, v: Visit, extra: { error?: string; status?: number } = {}) {
    pages.html(ctx, 'account-password', v.locale, { csrfToken: ctx.state.csrfToken as string, error: extra.error }, extra.status ?? 200);
  }

  router.get('/account/password', async (ctx) => {
    const v = await visit(ctx, { change: true });
    if (v) renderPassword(ctx, v);
  });

  router.post('/account/password', form, async (ctx) => {
    const input = readForm(ctx, passwordForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const t = translator(v.locale);
    // The current password is a guess like any other: counted by the sign-in throttle first.
    const attempt = await deps.throttle.beginAttempt(LoginThrottle.keyOf(v.user), ctx.ip);
    if (!(await deps.accounts.passwordMatches(v.user, input.current))) return renderPassword(ctx, v, { error: t('account.password_wrong'), status: 401 });
    await attempt.succeeded();
    if (input.password !== input.confirm) return renderPassword(ctx, v, { error: t('account.password_mismatch'), status: 400 });
    const problem = checkPassword(input.password, { email: v.user.email ?? undefined, username: v.user.username ?? undefined });
    if (problem) return renderPassword(ctx, v, { error: t(`account.password_problem.${problem}`), status: 400 });
    // Other sessions end and relying parties' tokens are revoked; this browser stays signed in.
    await deps.accounts.setPassword(v.user, input.password, {
      actor: 'user',
      keepSessionUid: await sessions.providerSessionUid(ctx),
      ...auditContext(ctx),
    });
    await deps.notifier.notify(v.user, v.locale, 'password_changed');
    ctx.status = 303;
    ctx.redirect('/account?done=password_changed');
  });
}
