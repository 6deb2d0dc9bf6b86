import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { AuditContext, AuditLog } from '../accounts/audit.ts';
import { eraseUser, type ErasureDependencies } from '../accounts/erase.ts';
import { exportPersonalData } from '../accounts/personal-data.ts';
import type { User } from '../generated/prisma/client.ts';
import type { PrismaClient } from '../storage/db.ts';

interface Helpers<S> {
  prisma: PrismaClient;
  audit: AuditLog;
  erasure: ErasureDependencies;
  body: (ctx: Context) => Promise<unknown>;
  context: (ctx: Context & { state: S }) => AuditContext & { actor: string };
  requireUser: (id: string) => Promise<User>;
  parse: <T extends z.ZodType>(schema: T, value: unknown) => z.output<T>;
  /** The body of a change that needs a reason (`{ reason }`). */
  reasonBody: z.ZodType<{ reason: string }>;
}

/**
 * A user's data for the user (GDPR articles 15 and 20: what "Download my data" gives) and erasing the
 * account at once (article 17), as `nyckel users export` and `nyckel users delete` do.
 */
export function personalDataRoutes<S>(router: Router<S>, h: Helpers<S>): void {
  router.get('/users/:id/export', async (ctx) => {
    const user = await h.requireUser(ctx.params.id);
    const { actor, ...where } = h.context(ctx);
    const data = await exportPersonalData(h.prisma, user);
    await h.audit.record('user.data_exported', { userId: user.id, data: { actor }, ...where });
    ctx.body = data;
  });

  router.post('/users/:id/erase', async (ctx) => {
    const input = h.parse(h.reasonBody, await h.body(ctx));
    const user = await h.requireUser(ctx.params.id);
    ctx.body = { erased: await eraseUser(h.erasure, user.id, { reason: input.reason, ...h.context(ctx) }) };
  });
}
