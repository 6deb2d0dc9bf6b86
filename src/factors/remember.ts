import type { Context } from 'koa';
import type { User } from '../generated/prisma/client.ts';
import { randomToken, type SecretBox } from '../security/crypto.ts';
import type { PrismaClient } from '../storage/db.ts';

export const REMEMBER_COOKIE = 'nyckel.remember';

/**
 * "Don't ask again in this browser for N days". The browser holds a random token in a signed,
 * HttpOnly cookie; the server keeps its keyed hash bound to the user, so a record can be listed and
 * revoked, and every record of a user is revoked when the password changes.
 *
 * A remembered browser lets a client's *required* second factor be skipped, but the login is then
 * reported as what it was: `amr` ["pwd"] and the password `acr`. A relying party that needs a second
 * factor for this very login asks for it with `acr_values` (step-up), which a remembered browser
 * never satisfies.
 */
export class RememberedBrowsers {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly box: SecretBox,
  ) {}

  private hash(token: string) {
    return this.box.mac('remembered-browser', token);
  }

  async remember(ctx: Context, user: User, input: { days: number; factor: string }): Promise<void> {
    const token = randomToken(32);
    const expiresAt = new Date(Date.now() + input.days * 86_400_000);
    await this.prisma.rememberedBrowser.create({
      data: {
        userId: user.id,
        tokenHash: this.hash(token),
        factor: input.factor,
        userAgent: ctx.get('user-agent').slice(0, 512) || null,
        expiresAt,
      },
    });
    ctx.cookies.set(REMEMBER_COOKIE, token, { httpOnly: true, sameSite: 'lax', signed: true, expires: expiresAt, overwrite: true });
  }

  /** The valid record of this browser for this user, if any (touching its last use). */
  async recognise(ctx: Context, user: User): Promise<boolean> {
    const token = ctx.cookies.get(REMEMBER_COOKIE, { signed: true });
    if (!token || !/^[A-Za-z0-9_-]{43}$/.test(token)) return false;
    const now = new Date();
    const { count } = await this.prisma.rememberedBrowser.updateMany({
      where: {
        tokenHash: this.hash(token),
        userId: user.id,
        revokedAt: null,
        expiresAt: { gt: now },
        createdAt: { gt: user.passwordChangedAt },
      },
      data: { lastUsedAt: now },
    });
    return count > 0;
  }

  list(userId: string) {
    return this.prisma.rememberedBrowser.findMany({
      where: { userId, revokedAt: null, expiresAt: { gt: new Date() } },
      orderBy: { createdAt: 'desc' },
    });
  }

  async revoke(userId: string, id?: string): Promise<number> {
    const { count } = await this.prisma.rememberedBrowser.updateMany({
      where: { userId, revokedAt: null, ...(id ? { id } : {}) },
      data: { revokedAt: new Date() },
    });
    return count;
  }
}
