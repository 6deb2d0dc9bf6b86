import type Router from '@koa/router';
import type { Context } from 'koa';
import type * as oidc from 'openid-client';
import type { Accounts } from '../accounts/accounts.ts';
import type { AuditLog } from '../accounts/audit.ts';
import type { FactorEngine } from '../factors/engine.ts';
import type { User } from '../generated/prisma/client.ts';
import { translator } from '../i18n/i18n.ts';
import { acr } from '../factors/acr.ts';
import type { PageRenderer } from '../server/pages.ts';
import { ACCOUNT_CLIENT_ID } from './account-client.ts';
import type { AccountSession, AccountSessions } from './session.ts';
import { LOST_DEVICE_PATH } from '../web/shared/paths.ts';

// Loaded at the first sign-in to the account pages, not at start.
const openidClient = () => import('openid-client');

export interface AccountSignInDependencies {
  issuer: string;
  /** Where this process itself answers (http://127.0.0.1:port): the token exchange need not leave the host. */
  backChannel?: string;
  sessions: AccountSessions;
  accounts: Accounts;
  audit: AuditLog;
  engine: FactorEngine;
  pages: PageRenderer;
  recentAuthMinutes: number;
}

/** A path on the account pages to come back to after signing in (never another origin). */
function safeReturn(value: unknown): string {
  return typeof value === 'string' && /^\/account(\/[A-Za-z0-9/_-]*)?$/.test(value) ? value : '/account';
}

/**
 * Signing in to the account pages goes through Nyckel itself, as any relying party does: an
 * authorization code request with PKCE by client `nyckel-account`, asking for the second factor
 * (acr_values) whenever the user has one, and for a fresh sign-in (max_age=0) before a change when the
 * last one is older than NYCKEL_ACCOUNT_RECENT_AUTH_MINUTES.
 */
export class AccountSignIn {
  private configuration?: Promise<oidc.Configuration>;

  constructor(private readonly deps: AccountSignInDependencies) {}

  private config(): Promise<oidc.Configuration> {
    this.configuration ??= this.discover().catch((error) => {
      this.configuration = undefined;
      throw error;
    });
    return this.configuration;
  }

  /**
   * Discovery of Nyckel itself. Nyckel names its endpoints after the issuer whatever address is asked
   * (src/server/issuer-origin.ts), so the browser is sent to the issuer, while every request this
   * client makes itself goes to the loopback listener.
   */
  private async discover(): Promise<oidc.Configuration> {
    const { issuer, backChannel } = this.deps;
    const client = await openidClient();
    const insecure = issuer.startsWith('http:') || backChannel?.startsWith('http:');
    const execute = insecure ? [client.allowInsecureRequests] : [];
    const loopback = backChannel ? { [client.customFetch]: this.loopbackFetch(backChannel) } : {};
    return client.discovery(new URL(issuer), ACCOUNT_CLIENT_ID, undefined, client.None(), { execute, ...loopback });
  }

  private loopbackFetch(backChannel: string): oidc.CustomFetch {
    const issuerOrigin = new URL(this.deps.issuer).origin;
    return (url, options) => {
      const target = new URL(url);
      const local = target.origin === issuerOrigin ? new URL(`${target.pathname}${target.search}`, backChannel) : target;
      return fetch(local, options as RequestInit);
    };
  }

  /** Whether the session's sign-in is recent enough, with the second factor if the user has one, for a change. */
  async isRecent(session: AccountSession, user: User): Promise<boolean> {
    const fresh = Date.now() / 1000 - session.authTime <= this.deps.recentAuthMinutes * 60;
    return fresh && !(await this.needsStepUp(session, user));
  }

  /**
   * Whether the session lacks the second factor the user has (every page asks for it then). A user
   * who had none when signing in keeps the session after adding one: the password was all they had.
   */
  async needsStepUp(session: AccountSession, user: User): Promise<boolean> {
    return session.acr !== acr.mfa && !session.noFactorAtSignIn && (await this.deps.engine.hasAnySecondFactor(user));
  }

  /** Sends the browser to sign in; `fresh` forces a new sign-in however recent the last one was. */
  redirectToSignIn(ctx: Context, options: { returnTo: string; fresh?: boolean }) {
    const query = new URLSearchParams({ return: options.returnTo });
    if (options.fresh) query.set('fresh', '1');
    ctx.status = 303;
    ctx.redirect(`/account/login?${query.toString()}`);
  }

  routes(router: Router) {
    router.get('/account/login', async (ctx) => this.login(ctx, { returnTo: safeReturn(ctx.query.return), fresh: ctx.query.fresh === '1', steppedUp: false }));
    router.get('/account/callback', (ctx) => this.callback(ctx));
    router.get('/account/signed-out', (ctx) => {
      const locale = this.deps.pages.localeOf(ctx);
      const t = translator(locale);
      this.deps.pages.html(ctx, 'message', locale, {
        title: t('account.signed_out_title'),
        message: t('account.signed_out', { service: this.deps.pages.branding.name }),
        link: { href: '/account', text: t('account.sign_in_again') },
      });
    });
  }

  private async login(ctx: Context, options: { returnTo: string; fresh: boolean; steppedUp: boolean }) {
    const config = await this.config();
    const client = await openidClient();
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    // A user already signed in (here or elsewhere) with a second factor is asked for it at once.
    const known = await this.signedInUser(ctx);
    const lostDevice = options.returnTo === LOST_DEVICE_PATH;
    const askSecondFactor = !lostDevice && (options.steppedUp || (known ? await this.deps.engine.hasAnySecondFactor(known) : false));
    this.deps.sessions.startLogin(ctx, { verifier, state, nonce, returnTo: options.returnTo, steppedUp: askSecondFactor });
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: `${this.deps.issuer}/account/callback`,
      scope: 'openid email',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      ...(askSecondFactor ? { acr_values: acr.mfa } : {}),
      ...(options.fresh ? { max_age: '0' } : {}),
      ...(typeof ctx.query.ui_locales === 'string' ? { ui_locales: ctx.query.ui_locales } : {}),
    });
    ctx.status = 303;
    ctx.redirect(url.toString());
  }

  /** The user of oidc-provider's session in this browser, if any. */
  private async signedInUser(ctx: Context): Promise<User | undefined> {
    const accountId = await this.deps.sessions.providerAccountId(ctx);
    return accountId ? ((await this.deps.accounts.findById(accountId)) ?? undefined) : undefined;
  }

  private async callback(ctx: Context) {
    const pending = this.deps.sessions.takeLogin(ctx);
    // No sign-in started in this browser (an old tab, a forged callback): start again.
    if (!pending) return ctx.redirect('/account');
    const client = await openidClient();
    let tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;
    try {
      tokens = await client.authorizationCodeGrant(await this.config(), new URL(ctx.href), {
        pkceCodeVerifier: pending.verifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
      });
    } catch (error) {
      // Cancelled, refused or replayed: nothing is signed in.
      const locale = this.deps.pages.localeOf(ctx);
      const t = translator(locale);
      const cancelled = error instanceof client.AuthorizationResponseError;
      return this.deps.pages.html(
        ctx,
        'message',
        locale,
        {
          title: t('account.not_signed_in_title'),
          message: t(cancelled ? 'account.cancelled' : 'account.sign_in_failed'),
          link: { href: '/account', text: t('account.sign_in_again') },
        },
        400,
      );
    }
    const claims = tokens.claims()!;
    const user = await this.deps.accounts.findById(claims.sub);
    const providerSession = this.deps.sessions.providerSessionId(ctx);
    if (!user || user.status !== 'active' || !providerSession) return ctx.redirect('/account');
    const session: AccountSession = {
      sub: user.id,
      providerSession,
      authTime: typeof claims.auth_time === 'number' ? claims.auth_time : Math.floor(Date.now() / 1000),
      acr: typeof claims.acr === 'string' ? claims.acr : acr.password,
      amr: Array.isArray(claims.amr) ? claims.amr.filter((v): v is string => typeof v === 'string') : [],
      idToken: tokens.id_token!,
      seenAt: Date.now(),
      noFactorAtSignIn: false,
    };
    session.noFactorAtSignIn = session.acr !== acr.mfa && !(await this.deps.engine.hasAnySecondFactor(user));
    if (pending.returnTo !== LOST_DEVICE_PATH && (await this.needsStepUp(session, user))) {
      // Signed in with the password only, but the user has a second factor: the pages need it.
      if (!pending.steppedUp) return this.login(ctx, { returnTo: pending.returnTo, fresh: false, steppedUp: true });
      const locale = this.deps.pages.localeOf(ctx);
      const t = translator(locale);
      return this.deps.pages.html(
        ctx,
        'message',
        locale,
        { title: t('account.not_signed_in_title'), message: t('account.second_factor_needed'), link: { href: '/account', text: t('account.sign_in_again') } },
        403,
      );
    }
    this.deps.sessions.write(ctx, session);
    await this.deps.audit.record('account.signed_in', {
      userId: user.id,
      data: { acr: session.acr, amr: session.amr },
      ip: ctx.ip,
      userAgent: ctx.get('user-agent'),
    });
    ctx.status = 303;
    ctx.redirect(pending.returnTo);
  }

  /** RP-initiated logout of the whole Nyckel session, back to /account/signed-out. */
  async endSessionUrl(session: AccountSession): Promise<string> {
    const client = await openidClient();
    return client
      .buildEndSessionUrl(await this.config(), { id_token_hint: session.idToken, post_logout_redirect_uri: `${this.deps.issuer}/account/signed-out` })
      .toString();
  }
}
