import { bodyParser } from '@koa/bodyparser';
import type { Context, Next } from 'koa';
import { z } from 'zod';
import { NyckelError } from '../../errors.ts';

/** Parses an HTML form body (urlencoded only) with a size limit; other bodies get a clear 4xx. */
export function formBody(limitBytes: number) {
  const parse = bodyParser({ enableTypes: ['form'], formLimit: `${limitBytes}b`, encoding: 'utf-8' });
  return async (ctx: Context, next: Next) => {
    if (!ctx.is('application/x-www-form-urlencoded')) throw new NyckelError('unsupported_media_type');
    try {
      await parse(ctx, async () => {});
    } catch (error) {
      const status = (error as { status?: number }).status;
      if (status === 413) throw new NyckelError('payload_too_large', undefined, { cause: error });
      throw new NyckelError('invalid_request', undefined, { cause: error });
    }
    await next();
  };
}

/** Validates a parsed form against a schema; repeated fields and wrong types are invalid_request. */
export function readForm<T extends z.ZodType>(ctx: Context, schema: T): z.output<T> {
  const parsed = schema.safeParse((ctx.request as unknown as { body?: unknown }).body ?? {});
  if (!parsed.success) throw new NyckelError('invalid_request', parsed.error.issues.map((i) => i.path.join('.')).join(', '));
  return parsed.data;
}

/** A named segment of the matched route (`:uid`, `:factor`); koa's Context types them loosely. */
export function routeParam(ctx: Context, name: string): string {
  const params = (ctx as Context & { params?: Record<string, string | undefined> }).params;
  return params?.[name] ?? '';
}
