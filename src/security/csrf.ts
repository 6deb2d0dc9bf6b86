import type { Context, Next } from 'koa';
import { NyckelError } from '../errors.ts';
import { randomToken, safeEqual, type SecretBox } from './crypto.ts';

const COOKIE = 'nyckel.csrf';

/**
 * Signed double-submit: a random per-browser seed in an HttpOnly cookie, and in every form its MAC
 * under the server's key. A page of another origin can neither read the seed nor forge the MAC.
 */
export function csrfProtection(box: SecretBox) {
  return async (ctx: Context, next: Next) => {
    let seed = ctx.cookies.get(COOKIE);
    if (!seed || !/^[A-Za-z0-9_-]{43}$/.test(seed)) {
      seed = randomToken();
      ctx.cookies.set(COOKIE, seed, { httpOnly: true, sameSite: 'lax', overwrite: true });
      ctx.state.csrfFresh = true;
    }
    ctx.state.csrfSeed = seed;
    ctx.state.csrfToken = box.mac('csrf', seed);
    await next();
  };
}

/** The per-browser random seed (set by csrfProtection), also used to recognise this browser. */
export function csrfSeed(ctx: Context): string {
  return ctx.cookies.get(COOKIE) ?? (ctx.state.csrfSeed as string);
}

export function assertCsrf(ctx: Context, submitted: unknown) {
  const expected = ctx.state.csrfToken as string | undefined;
  if (ctx.state.csrfFresh || !expected || typeof submitted !== 'string' || !safeEqual(submitted, expected)) {
    throw new NyckelError('invalid_csrf');
  }
}
