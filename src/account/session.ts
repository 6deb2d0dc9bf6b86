import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { z } from 'zod';
import type { SecretBox } from '../security/crypto.ts';

const COOKIE = 'nyckel.account';
const LOGIN_COOKIE = 'nyckel.account-login';
const PURPOSE = 'account-session';
const LOGIN_PURPOSE = 'account-login';
/** oidc-provider's session cookie (named in src/provider/provider.ts). */
const PROVIDER_SESSION_COOKIE = 'nyckel.session';

const sessionSchema = z.object({
  sub: z.string(),
  /** oidc-provider's session this page session belongs to: signing that out ends this one too. */
  providerSession: z.string(),
  /** Seconds since the epoch (the ID token's auth_time). */
  authTime: z.number(),
  acr: z.string(),
  amr: z.array(z.string()),
  idToken: z.string(),
  /** The user had no second factor when signing in: one added in this session does not force a new sign-in. */
  noFactorAtSignIn: z.boolean(),
  /** Milliseconds since the epoch of the last request (idle timeout). */
  seenAt: z.number(),
});
export type AccountSession = z.infer<typeof sessionSchema>;

const loginSchema = z.object({
  verifier: z.string(),
  state: z.string(),
  nonce: z.string(),
  returnTo: z.string(),
  /** The second factor was asked for already: a sign-in coming back without it is not asked again. */
  steppedUp: z.boolean(),
});
export type PendingLogin = z.infer<typeof loginSchema>;

/**
 * The account pages' own session: what the ID token said (sealed with the master key, in an HttpOnly
 * cookie on /account), valid while the oidc-provider session it came from lives and the idle time
 * has not run out. Nothing is kept on the server, so any node can serve the pages.
 */
export class AccountSessions {
  constructor(
    private readonly box: SecretBox,
    private readonly provider: () => Provider,
    private readonly idleMinutes: number,
  ) {}

  private cookieOptions(ctx: Context, maxAgeMs: number) {
    return { httpOnly: true, sameSite: 'lax' as const, path: '/account', secure: ctx.secure, maxAge: maxAgeMs, overwrite: true };
  }

  private seal(value: unknown, purpose: string): string {
    return Buffer.from(this.box.seal(purpose, JSON.stringify(value))).toString('base64url');
  }

  private open<T>(raw: string | undefined, purpose: string, schema: z.ZodType<T>): T | undefined {
    if (!raw || raw.length > 8192) return undefined;
    try {
      return schema.parse(JSON.parse(this.box.open(purpose, Buffer.from(raw, 'base64url')).toString('utf8')));
    } catch {
      return undefined;
    }
  }

  /** The session of this browser, if it is still alive; refreshes the idle timer. */
  async read(ctx: Context): Promise<AccountSession | undefined> {
    const session = this.open(ctx.cookies.get(COOKIE), PURPOSE, sessionSchema);
    if (!session || Date.now() - session.seenAt > this.idleMinutes * 60_000) return undefined;
    if (!(await this.providerSessionAlive(ctx, session))) return undefined;
    this.write(ctx, { ...session, seenAt: Date.now() });
    return session;
  }

  write(ctx: Context, session: AccountSession) {
    ctx.cookies.set(COOKIE, this.seal(session, PURPOSE), this.cookieOptions(ctx, this.idleMinutes * 60_000));
  }

  clear(ctx: Context) {
    ctx.cookies.set(COOKIE, null, { path: '/account' });
  }

  /** The id of oidc-provider's session in this browser (from its signed cookie). */
  providerSessionId(ctx: Context): string | undefined {
    return ctx.cookies.get(PROVIDER_SESSION_COOKIE, { signed: true }) ?? undefined;
  }

  /** The account signed in to oidc-provider in this browser, if any. */
  async providerAccountId(ctx: Context): Promise<string | undefined> {
    const id = this.providerSessionId(ctx);
    if (!id) return undefined;
    const stored = await this.provider().Session.find(id);
    return stored?.accountId ?? undefined;
  }

  /** The uid of oidc-provider's session in this browser (what its rows are kept or deleted by). */
  async providerSessionUid(ctx: Context): Promise<string | undefined> {
    const id = this.providerSessionId(ctx);
    return id ? ((await this.provider().Session.find(id))?.uid ?? undefined) : undefined;
  }

  private async providerSessionAlive(ctx: Context, session: AccountSession): Promise<boolean> {
    return this.providerSessionId(ctx) === session.providerSession && (await this.providerAccountId(ctx)) === session.sub;
  }

  startLogin(ctx: Context, pending: PendingLogin) {
    ctx.cookies.set(LOGIN_COOKIE, this.seal(pending, LOGIN_PURPOSE), this.cookieOptions(ctx, 15 * 60_000));
  }

  takeLogin(ctx: Context): PendingLogin | undefined {
    const pending = this.open(ctx.cookies.get(LOGIN_COOKIE), LOGIN_PURPOSE, loginSchema);
    ctx.cookies.set(LOGIN_COOKIE, null, { path: '/account' });
    return pending;
  }
}
