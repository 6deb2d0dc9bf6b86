import { routeParam } from '../shared/forms.ts';
import type { Context, Middleware } from 'koa';
import type Provider from 'oidc-provider';
import { LOST_DEVICE_PATH } from '../shared/paths.ts';
import { ACCOUNT_CLIENT_ID } from '../../clients/clients-file.ts';
import { NyckelError, isNyckelError } from '../../errors.ts';
import type { ClientDirectory } from '../../clients/directory.ts';
import type { ChallengeContext } from '../../factors/contract.ts';
import type { SecondFactorPolicy } from '../../factors/policy.ts';
import type { ChallengeStore } from '../../factors/shared/challenges.ts';
import type { SignInSnapshot, VerifiedFactor, SignIns } from '../../factors/sign-ins.ts';
import type { SignInFrame } from '../../factors/ui-contract.ts';
import type { User } from '../../generated/prisma/client.ts';
import { translator, type Translate } from '../../i18n/i18n.ts';
import { csrfSeed } from '../../security/csrf.ts';
import type { PageRenderer } from '../../server/pages.ts';

type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

/** The sign-in of one request: its interaction, the one user it is bound to, and what was verified. */
export interface SignInState {
  details: Details;
  user: User;
  verified: VerifiedFactor[];
  /** The record as this request last wrote it (SignInSteps.recordVerified), for `finish` to judge without reading it again. */
  recorded?: SignInSnapshot;
  /** A new password from "Forgot your password?" waits for this sign-in to end (SignInFlow.finish). */
  pendingPassword: boolean;
  challengeCtx: ChallengeContext;
  frame: SignInFrame;
  t: Translate;
}

export interface SignInStateDependencies {
  provider: () => Provider;
  signIns: SignIns;
  challenges: ChallengeStore;
  pages: PageRenderer;
  policy: SecondFactorPolicy;
  issuer: string;
}

/** Thrown when a sign-in was already ended: `endedSignIns` sends the browser on to the relying party. */
export class SignInEnded extends Error {
  constructor(readonly returnTo: string) {
    super('sign-in already ended');
  }
}

/**
 * A request of a sign-in already ended (the same answer sent twice, "Continue here" in a second tab):
 * on to the relying party while the interaction is still there; once it is gone, a page that says the
 * person is signed in and links back to the service, never "expired".
 */
export function endedSignIns(deps: { signIns: Pick<SignIns, 'load'>; pages: PageRenderer; clients: Pick<ClientDirectory, 'homeOf'> }): Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      if (error instanceof SignInEnded) {
        ctx.status = 303;
        ctx.redirect(error.returnTo);
        return;
      }
      const expired = (isNyckelError(error) && error.code === 'session_expired') || (error as { name?: string })?.name === 'SessionNotFound';
      if (!expired) throw error;
      const ended = await deps.signIns.load(routeParam(ctx, 'uid'));
      if (!ended?.completedAt) throw error;
      const locale = deps.pages.localeOf(ctx);
      const t = translator(locale);
      const clientName = deps.pages.clientName(ended.clientId) ?? ended.clientId;
      const home = deps.clients.homeOf(ended.clientId);
      const link = home ? { href: home, text: t('common.back_to_client', { client: clientName }) } : undefined;
      deps.pages.html(ctx, 'message', locale, {
        title: t('ended.title'),
        message: t('ended.message', { client: clientName }),
        link,
        clientId: ended.clientId,
        clientName,
      });
    }
  };
}

const STATE_KEY = 'signIn';

/**
 * Loads the sign-in of this request once (into ctx.state): the interaction of this browser and uid,
 * its live record, and the active user it is bound to. Every check fails as session_expired.
 */
export function signInLoader(deps: SignInStateDependencies) {
  async function load(ctx: Context): Promise<SignInState> {
    const details = await deps.provider().interactionDetails(ctx.req, ctx.res);
    if (details.uid !== routeParam(ctx, 'uid')) throw new NyckelError('session_expired');
    const loaded = await deps.signIns.loadWithUser(details.uid);
    const attempt = loaded?.record;
    if (!attempt || attempt.expiresAt <= new Date()) throw new NyckelError('session_expired');
    // Ended already (the same answer sent twice, a second tab): back to the relying party with its login.
    if (attempt.completedAt) throw new SignInEnded(details.returnTo);
    const user = loaded.user;
    if (!user || user.status !== 'active') throw new NyckelError('session_expired');
    const clientId = String(details.params.client_id);
    const clientName = deps.pages.clientName(clientId) ?? clientId;
    const locale = deps.pages.localeOf(ctx, details.params.ui_locales as string | undefined);
    return {
      details,
      user,
      verified: attempt.verified,
      pendingPassword: attempt.pendingPassword,
      challengeCtx: {
        user,
        uid: details.uid,
        clientId,
        clientName,
        locale,
        ip: ctx.ip,
        userAgent: ctx.get('user-agent'),
        browserHash: deps.challenges.browserHash(csrfSeed(ctx)),
        issuer: deps.issuer,
        held: loaded.held,
      },
      frame: {
        locale,
        clientId,
        clientName,
        uid: details.uid,
        csrfToken: ctx.state.csrfToken as string,
        forgotDevice: deps.policy.forgotDeviceOffered(clientId, details.params),
        // Signing in to the account pages without the device: the way to "delete all my devices".
        lostDeviceHref: clientId === ACCOUNT_CLIENT_ID ? LOST_DEVICE_PATH : undefined,
      },
      t: translator(locale),
    };
  }

  /** The sign-in of this request, loaded on first use. */
  async function signInOf(ctx: Context): Promise<SignInState> {
    const loaded = ctx.state[STATE_KEY] as SignInState | undefined;
    if (loaded) return loaded;
    const state = await load(ctx);
    ctx.state[STATE_KEY] = state;
    return state;
  }

  /** Middleware for a route of a sign-in: loads it before the handler runs. */
  const signedIn: Middleware = async (ctx, next) => {
    await signInOf(ctx);
    await next();
  };

  return { signedIn, signInOf };
}

/** The sign-in `signedIn` loaded for this request. */
export function signInState(ctx: Context): SignInState {
  const state = ctx.state[STATE_KEY] as SignInState | undefined;
  if (!state) throw new Error('signedIn middleware missing before this route');
  return state;
}
