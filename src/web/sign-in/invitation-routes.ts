import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { z } from 'zod';
import { accountName, type Accounts } from '../../accounts/accounts.ts';
import { INVITATION_PATH, type Invitations } from '../../accounts/invitations.ts';
import { checkPassword } from '../../accounts/password-policy.ts';
import { ACCOUNT_CLIENT_ID } from '../../clients/clients-file.ts';
import { NyckelError } from '../../errors.ts';
import { passwordFactor, type SignIns, type VerifiedFactor } from '../../factors/sign-ins.ts';
import type { User } from '../../generated/prisma/client.ts';
import { translator } from '../../i18n/i18n.ts';
import { assertCsrf, csrfProtection } from '../../security/csrf.ts';
import type { SecretBox } from '../../security/crypto.ts';
import type { PageRenderer } from '../../server/pages.ts';
import { formBody, readForm } from '../shared/forms.ts';
import { frameOf, loadInteraction } from './login-routes.ts';
import type { SignInFlow } from './sign-in-flow.ts';

export interface InvitationRouteDependencies {
  provider: () => Provider;
  invitations: Invitations;
  accounts: Accounts;
  signIns: SignIns;
  flow: SignInFlow;
  pages: PageRenderer;
  box: SecretBox;
  maxBodyBytes: number;
}

/** The invitation being accepted in this browser, between the link and the password. */
const INVITATION_COOKIE = 'nyckel.invitation';
/** Where the account pages welcome the new user (it says what to add next). */
export const WELCOME_PATH = '/account/welcome';

const passwordForm = z.object({ _csrf: z.string().max(200), password: z.string().max(4096).default(''), confirm: z.string().max(4096).default('') });

/**
 * An invitation link: the browser keeps the token (HttpOnly, one hour) and signs in to the account
 * pages, whose sign-in shows "choose your password" instead of the password field. Choosing it uses
 * the invitation once, sets the password, verifies the address, and ends the sign-in with the password
 * and the mailbox the link reached as its factors (SignInFlow.finish), on the account pages.
 */
export function invitationRoutes(deps: InvitationRouteDependencies): Router {
  const router = new Router();
  const form = formBody(deps.maxBodyBytes);
  router.use('/interaction', csrfProtection(deps.box));

  router.get(`${INVITATION_PATH}/:token`, async (ctx) => {
    const user = await deps.invitations.userOf(ctx.params.token);
    if (!user) return renderSpent(ctx);
    ctx.cookies.set(INVITATION_COOKIE, ctx.params.token, { httpOnly: true, sameSite: 'lax', maxAge: 3600_000, overwrite: true });
    ctx.status = 303;
    ctx.redirect(`/account/login?return=${encodeURIComponent(WELCOME_PATH)}`);
  });

  router.get(WELCOME_PATH, (ctx) => {
    ctx.status = 303;
    ctx.redirect('/account?done=welcome');
  });

  /** The account pages' sign-in of a browser holding an invitation: "choose your password" instead of the login. */
  router.get('/interaction/:uid', async (ctx, next) => {
    const invited = await invitedSignIn(ctx);
    if (invited) renderChoose(ctx, invited.details, invited.user);
    else await next();
  });

  router.post('/interaction/:uid/invitation', form, async (ctx) => {
    const input = readForm(ctx, passwordForm);
    assertCsrf(ctx, input._csrf);
    const invited = await invitedSignIn(ctx);
    if (!invited) return renderSpent(ctx);
    const { details, user, token } = invited;
    const t = translator(frameOf(deps.pages, ctx, details).locale);
    if (input.password !== input.confirm) return renderChoose(ctx, details, user, t('account.password_mismatch'));
    const problem = checkPassword(input.password, { email: user.email ?? undefined, username: user.username ?? undefined });
    if (problem) return renderChoose(ctx, details, user, t(`account.password_problem.${problem}`));
    const accepted = await deps.invitations.accept(token, await deps.accounts.hashPassword(input.password), { ip: ctx.ip, userAgent: ctx.get('user-agent') });
    ctx.cookies.set(INVITATION_COOKIE, null);
    if (!accepted) return renderSpent(ctx);
    // The password, and the mailbox the link reached: the sign-in's two factors.
    await deps.flow.begin(details, passwordFactor(accepted.id));
    const mailbox = { factor: 'invitation', channel: 'email', amr: ['email'], at: new Date().toISOString(), userId: accepted.id } satisfies VerifiedFactor;
    const { snapshot: recorded } = await deps.signIns.record(details.uid, mailbox);
    const locale = frameOf(deps.pages, ctx, details).locale;
    if ((await deps.flow.finish(ctx, details, { user: accepted, method: 'invitation', locale, recorded })) === 'unsatisfied')
      throw new NyckelError('session_expired');
  });

  async function invitedSignIn(ctx: Context): Promise<{ details: Awaited<ReturnType<typeof loadInteraction>>; user: User; token: string } | undefined> {
    const token = ctx.cookies.get(INVITATION_COOKIE);
    if (!token) return undefined;
    const details = await loadInteraction(deps, ctx);
    if (details.params.client_id !== ACCOUNT_CLIENT_ID || details.prompt.name !== 'login') return undefined;
    const user = await deps.invitations.userOf(token);
    return user ? { details, user, token } : undefined;
  }

  function renderChoose(ctx: Context, details: Awaited<ReturnType<typeof loadInteraction>>, user: User, error?: string) {
    const frame = frameOf(deps.pages, ctx, details);
    const model = { ...frame, name: user.name ?? accountName(user), signInName: accountName(user), error };
    deps.pages.html(ctx, 'invitation', frame.locale, model, error ? 400 : 200);
  }

  function renderSpent(ctx: Context) {
    const locale = deps.pages.localeOf(ctx);
    const t = translator(locale);
    deps.pages.html(ctx, 'message', locale, { title: t('invitation.spent_title'), message: t('invitation.spent') }, 410);
  }

  return router;
}
