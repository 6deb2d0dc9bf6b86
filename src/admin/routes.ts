import type { Invitations } from '../accounts/invitations.ts';
import type { ErasureDependencies } from '../accounts/erase.ts';
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { z, ZodError } from 'zod';
import { emailSchema, supportedLocales, type Accounts } from '../accounts/accounts.ts';
import type { AuditContext, AuditLog } from '../accounts/audit.ts';
import { importUsers, parseImportFile } from '../accounts/import.ts';
import { resetSecondFactors } from '../accounts/reset-factors.ts';
import type { ClientDirectory } from '../clients/directory.ts';
import type { Settings } from '../config/settings.ts';
import { isNyckelError, NyckelError } from '../errors.ts';
import type { User } from '../generated/prisma/client.ts';
import type { Logger } from '../logger.ts';
import type { PrismaClient } from '../storage/db.ts';
import { isStorageUnavailable, storageUnavailable } from '../storage/unavailable.ts';
import { bindPersonalNumber, unbindPersonalNumber } from '../factors/bankid/binding.ts';
import { sealTotpSecret } from '../factors/totp/index.ts';
import { parsePersonalNumber, type PersonalNumberProblem } from '../factors/bankid/personal-number.ts';
import type { SecretBox } from '../security/crypto.ts';
import { personalDataRoutes } from './personal-data-routes.ts';
import { auditTail, setSignInEmail, unlockUser, userDetails, type AccountLocks } from './operations.ts';
import { adminTokenVerifier, BearerError, type AdminCaller, type TokenStore } from './token.ts';

export const ADMIN_PREFIX = '/admin/v1';

/** The largest import body (CSV or JSON): bigger than an ordinary request, which NYCKEL_MAX_BODY_BYTES bounds. */
export const MAX_IMPORT_BYTES = 10 * 1024 * 1024;

/** The raw body as text, refused once it passes `limit` bytes. */
async function readText(ctx: Context, limit: number): Promise<string> {
  const declared = Number(ctx.get('content-length') || 0);
  if (declared > limit) throw new NyckelError('payload_too_large', `the body is larger than ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new NyckelError('payload_too_large', `the body is larger than ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export interface AdminDependencies {
  settings: Settings;
  prisma: PrismaClient;
  accounts: Accounts;
  audit: AuditLog;
  clients: ClientDirectory;
  /** Seals BankID personal numbers at rest. */
  box: SecretBox;
  /** The provider in force, whose client_credentials tokens the API takes. */
  provider: TokenStore;
  logger: Logger;
  /** The failure and password counters an operator sees and lifts. */
  locks: AccountLocks;
  /** Invitation links by mail. */
  invitations: Invitations;
  /** Erasing an account (DELETE /users/{id}). */
  erasure: ErasureDependencies;
}

interface AdminState {
  caller: AdminCaller;
}

const flag = z.boolean().optional();
const bodies = {
  createUser: z
    .object({
      email: z.string().optional(),
      username: z.string().optional(),
      name: z.string().optional(),
      locale: z.enum(supportedLocales).optional(),
      phone: z.string().optional(),
      password: z.string().optional(),
      // Checked with the import's rules: a hash string, or a Keycloak credential object.
      password_hash: z.union([z.string(), z.record(z.string(), z.unknown())]).optional(),
      email_verified: flag,
      phone_verified: flag,
      totp_secret: z.string().optional(),
      totp_digits: z.number().int().optional(),
      totp_period: z.number().int().optional(),
      totp_algorithm: z.string().optional(),
    })
    .strict(),
  signInEmail: z.object({ email: emailSchema }).strict(),
  username: z.object({ username: z.string().max(256).nullable() }).strict(),
  reason: z.object({ reason: z.string().trim().min(1, 'is required: say why (it is kept in the audit log)').max(500) }).strict(),
  email: z.object({ address: emailSchema, verified: flag }).strict(),
  phone: z.object({ number: z.string(), verified: flag }).strict(),
  personalNumber: z.object({ number: z.string().max(20) }).strict(),
};
const queries = {
  users: z.object({ email: z.string().optional(), username: z.string().optional(), limit: z.coerce.number().int().min(1).max(200).default(50) }),
  audit: z.object({ user: z.string().optional(), limit: z.coerce.number().int().min(1).max(1000).default(50) }),
  create: z.object({ allow_weak_hashes: z.enum(['true', 'false']).default('false') }),
};

const personalNumberProblems: Record<PersonalNumberProblem, string> = {
  format: 'is not a personal identity number (YYYYMMDD-NNNC or YYMMDD-NNNC)',
  date: 'has a birth date that does not exist',
  check_digit: 'has a wrong check digit (the last digit)',
};

function describeZod(error: ZodError) {
  return error.issues
    .map((issue) => {
      if (issue.code === 'unrecognized_keys') return `unknown field(s) ${issue.keys.join(', ')}`;
      return issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message;
    })
    .join('; ');
}

/** What an import over the API needs beyond the caller: the sealer of apps' secrets, and whether weak hashes are let in. */
const importRules = (deps: AdminDependencies, ctx: Context) => ({
  sealTotpSecret: sealTotpSecret(deps.box),
  // `?allow_weak_hashes=true`: a user whose imported hash is weak is created without it instead of refused.
  allowWeakHashes: parse(queries.create, ctx.query).allow_weak_hashes === 'true',
});

function parse<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const parsed = schema.safeParse(value ?? {});
  if (!parsed.success) throw new NyckelError('invalid_request', describeZod(parsed.error));
  return parsed.data;
}

/** The one answer shape for failures: `{ error, error_description }`, never a page or a stack. */
function jsonErrors(logger: Logger) {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
    } catch (thrown) {
      ctx.set('Cache-Control', 'no-store');
      if (thrown instanceof BearerError) {
        ctx.status = thrown.status;
        ctx.set('WWW-Authenticate', thrown.challenge(Boolean(ctx.get('authorization'))));
        ctx.body = { error: thrown.error, error_description: thrown.description };
        return;
      }
      let error: NyckelError;
      if (isNyckelError(thrown)) error = thrown;
      else if (thrown instanceof ZodError) error = new NyckelError('invalid_request', describeZod(thrown));
      else if (isStorageUnavailable(thrown)) error = storageUnavailable(thrown);
      else {
        const status = (thrown as { status?: number }).status;
        if (status === 413) error = new NyckelError('payload_too_large', 'the body is too large');
        else if (status && status >= 400 && status < 500) error = new NyckelError('invalid_request', 'the body is not valid JSON');
        else {
          logger.error({ err: thrown, requestId: ctx.state.requestId as string | undefined }, 'admin API: unhandled error');
          error = new NyckelError('server_error', 'internal error');
        }
      }
      ctx.status = error.status;
      if (error.retryAfterSeconds) ctx.set('Retry-After', String(error.retryAfterSeconds));
      ctx.body = { error: error.code, error_description: error.detail ?? error.code };
    }
  };
}

export function adminApiRoutes(deps: AdminDependencies): Router<AdminState> {
  const { prisma, accounts, audit, settings } = deps;
  const router = new Router<AdminState>({ prefix: ADMIN_PREFIX });
  const verify = adminTokenVerifier({ issuer: settings.issuer, tokens: deps.provider, clients: deps.clients });
  const json = bodyParser({ enableTypes: ['json'], jsonLimit: `${settings.maxBodyBytes}b`, encoding: 'utf-8' });

  router.use(jsonErrors(deps.logger));
  router.use(async (ctx, next) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.state.caller = await verify(ctx.get('authorization') || undefined);
    await next();
  });

  /** The body of a request that has one: JSON only. */
  const body = async (ctx: Context): Promise<unknown> => {
    const declared = Number(ctx.get('content-length') || 0) > 0 || Boolean(ctx.get('transfer-encoding'));
    if (!declared) return {};
    if (!ctx.is('application/json')) throw new NyckelError('unsupported_media_type', 'the body must be JSON (Content-Type: application/json)');
    await json(ctx, async () => {});
    return (ctx.request as unknown as { body?: unknown }).body;
  };

  const context = (ctx: Context & { state: AdminState }): AuditContext & { actor: string } => ({
    actor: `client:${ctx.state.caller.clientId}`,
    ip: ctx.ip,
    userAgent: ctx.get('user-agent') || undefined,
  });
  const importOptions = (ctx: Context & { state: AdminState }) => ({ ...context(ctx), ...importRules(deps, ctx) });

  const requireUser = async (id: string): Promise<User> => {
    const user = z.uuid().safeParse(id).success ? await accounts.findById(id) : null;
    if (!user) throw new NyckelError('not_found', `no user with the id ${id}`);
    return user;
  };

  const summary = (user: User) => ({
    id: user.id,
    email: user.email,
    username: user.username,
    name: user.name,
    status: user.status,
    locale: user.locale,
    createdAt: user.createdAt.toISOString(),
  });

  router.get('/users', async (ctx) => {
    const query = parse(queries.users, ctx.query);
    if (query.email !== undefined) {
      const user = await accounts.findByEmail(query.email);
      ctx.body = { users: user ? [summary(user)] : [] };
      return;
    }
    if (query.username !== undefined) {
      const user = await accounts.findByLogin(query.username, 'username');
      ctx.body = { users: user ? [summary(user)] : [] };
      return;
    }
    const users = await prisma.user.findMany({ orderBy: [{ username: 'asc' }, { email: 'asc' }], take: query.limit });
    ctx.body = { users: users.map(summary) };
  });

  router.post('/users', async (ctx) => {
    const input = parse(bodies.createUser, await body(ctx));
    // The same rules as a row of `users import`: a missing password is a random one nobody knows.
    const report = await importUsers(prisma, accounts, audit, [{ line: 1, fields: input }], { ...importOptions(ctx), summary: false });
    const [outcome] = report.rows;
    if (outcome.status === 'invalid') throw new NyckelError('invalid_request', outcome.problems.join('; '));
    if (outcome.status === 'exists')
      throw new NyckelError('conflict', `a user with the ${outcome.username ? `user name ${outcome.username}` : `email ${outcome.email}`} already exists`);
    ctx.status = 201;
    ctx.set('Location', `${settings.issuer}${ADMIN_PREFIX}/users/${outcome.userId}`);
    ctx.body = await userDetails(prisma, await requireUser(outcome.userId), deps.locks);
  });

  // The same as `nyckel users import`: a CSV body (text/csv, with a header row) or a JSON array.
  router.post('/users/import', async (ctx) => {
    const kind = ctx.is('text/csv', 'application/json');
    if (!kind) throw new NyckelError('unsupported_media_type', 'send the users as text/csv (with a header row) or as a JSON array (application/json)');
    const text = await readText(ctx, MAX_IMPORT_BYTES);
    let rows;
    try {
      rows = parseImportFile(text, kind === 'application/json' ? 'users.json' : 'users.csv');
    } catch (error) {
      if (isNyckelError(error)) throw new NyckelError('invalid_request', error.detail);
      throw error;
    }
    ctx.body = await importUsers(prisma, accounts, audit, rows, importOptions(ctx));
  });

  router.get('/users/:id', async (ctx) => {
    ctx.body = await userDetails(prisma, await requireUser(ctx.params.id), deps.locks);
  });

  router.post('/users/:id/sign-in-email', async (ctx) => {
    const input = parse(bodies.signInEmail, await body(ctx));
    const user = await setSignInEmail(prisma, audit, await requireUser(ctx.params.id), input.email, context(ctx));
    ctx.body = await userDetails(prisma, user, deps.locks);
  });

  router.post('/users/:id/reset-factors', async (ctx) => {
    const input = parse(bodies.reason, await body(ctx));
    const user = await requireUser(ctx.params.id);
    const removed = await resetSecondFactors(prisma, audit, user.id, { reason: input.reason, ...context(ctx) }, accounts.revokeElsewhere);
    ctx.body = { removed };
  });

  router.post('/users/:id/unlock', async (ctx) => {
    await body(ctx);
    ctx.body = { cleared: await unlockUser(prisma, audit, deps.locks, await requireUser(ctx.params.id), context(ctx)) };
  });

  for (const [action, status] of [
    ['disable', 'disabled'],
    ['enable', 'active'],
  ] as const) {
    router.post(`/users/:id/${action}`, async (ctx) => {
      await body(ctx);
      const user = await requireUser(ctx.params.id);
      const updated = user.status === status ? user : await accounts.setStatus(user, status, context(ctx));
      ctx.body = await userDetails(prisma, updated, deps.locks);
    });
  }

  contactRoutes(router, deps, { body, context, requireUser });
  personalDataRoutes(router, { prisma, audit, erasure: deps.erasure, body, context, requireUser, parse, reasonBody: bodies.reason });

  router.get('/audit', async (ctx) => {
    const query = parse(queries.audit, ctx.query);
    let userId: string | undefined;
    if (query.user !== undefined) userId = (await accounts.requireByLogin(query.user)).id;
    ctx.body = { events: await auditTail(prisma, { userId, limit: query.limit }) };
  });

  // Anything else under the prefix is answered here, in JSON, and only to a caller with a token.
  router.all('/{*rest}', () => {
    throw new NyckelError('not_found', 'no such admin API route');
  });

  return router;
}

/** A user's user name, addresses, numbers and bound personal number (BankID). */
function contactRoutes(
  router: Router<AdminState>,
  deps: AdminDependencies,
  h: {
    body: (ctx: Context) => Promise<unknown>;
    context: (ctx: Context & { state: AdminState }) => AuditContext & { actor: string };
    requireUser: (id: string) => Promise<User>;
  },
) {
  const { prisma, accounts, audit, settings, box } = deps;
  const { body, context, requireUser } = h;
  router.post('/users/:id/invitation', async (ctx) => {
    await body(ctx);
    const sent = await deps.invitations.invite(await requireUser(ctx.params.id), context(ctx));
    ctx.body = { to: sent.to, expiresAt: sent.expiresAt.toISOString() };
  });

  router.post('/users/:id/username', async (ctx) => {
    const input = parse(bodies.username, await body(ctx));
    const user = await accounts.setUsername(await requireUser(ctx.params.id), input.username, context(ctx));
    ctx.body = await userDetails(prisma, user, deps.locks);
  });

  router.post('/users/:id/emails', async (ctx) => {
    const input = parse(bodies.email, await body(ctx));
    const user = await requireUser(ctx.params.id);
    const row = await accounts.addEmail(user, input.address, { verified: input.verified, maxAddresses: settings.maxContactEmails, ...context(ctx) });
    ctx.status = 201;
    ctx.body = { address: row.address, verified: Boolean(row.verifiedAt) };
  });

  router.delete('/users/:id/emails/:address', async (ctx) => {
    const user = await requireUser(ctx.params.id);
    await accounts.removeEmail(user, parse(emailSchema, ctx.params.address), context(ctx));
    ctx.status = 204;
  });

  router.post('/users/:id/phones', async (ctx) => {
    const input = parse(bodies.phone, await body(ctx));
    const user = await requireUser(ctx.params.id);
    const row = await accounts.addPhone(user, input.number, { verified: input.verified, ...context(ctx) });
    ctx.status = 201;
    ctx.body = { number: row.e164, verified: Boolean(row.verifiedAt) };
  });

  router.delete('/users/:id/phones/:number', async (ctx) => {
    const user = await requireUser(ctx.params.id);
    await accounts.removePhone(user, ctx.params.number, context(ctx));
    ctx.status = 204;
  });

  router.put('/users/:id/personal-number', async (ctx) => {
    const input = parse(bodies.personalNumber, await body(ctx));
    const parsed = parsePersonalNumber(input.number);
    if (!parsed.ok) throw new NyckelError('invalid_request', `number: ${personalNumberProblems[parsed.problem]}`);
    const user = await requireUser(ctx.params.id);
    const masked = await prisma.$transaction(async (tx) => {
      const row = await bindPersonalNumber(tx, box, user.id, parsed.value);
      const { masked } = row.data as { masked: string };
      const { actor, ...where } = context(ctx);
      await audit.within(tx).record('factor.enrolled', { userId: user.id, data: { factor: 'bankid', masked, actor }, ...where });
      return masked;
    });
    ctx.body = { personal_number: masked };
  });

  router.delete('/users/:id/personal-number', async (ctx) => {
    const user = await requireUser(ctx.params.id);
    const removed = await prisma.$transaction(async (tx) => {
      const count = await unbindPersonalNumber(tx, user.id);
      const { actor, ...where } = context(ctx);
      if (count > 0) await audit.within(tx).record('factor.removed', { userId: user.id, data: { factor: 'bankid', actor }, ...where });
      return count;
    });
    if (removed === 0) throw new NyckelError('not_found', 'the user has no personal number');
    ctx.status = 204;
  });
}
