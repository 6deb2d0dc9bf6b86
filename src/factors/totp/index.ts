import { accountName } from '../../accounts/accounts.ts';
import type { User } from '../../generated/prisma/client.ts';
import type { ChallengeContext, FactorModule, VerifyOutcome } from '../contract.ts';
import type { FactorDependencies } from '../deps.ts';
import type { SecretBox } from '../../security/crypto.ts';
import { driverOf } from '../../storage/sql.ts';
import { heldAs, heldFor, type HeldAs } from '../shared/held-enrolments.ts';
import { matchingStep, newTotpSecret, otpauthUri, totpOptionsOf } from './otp.ts';

export const TOTP_FAMILY = 'totp';
/** The challenge id of a sign-in with an app: nothing is sent, so there is nothing to look up. */
export const APP_CHALLENGE = 'app';
/** How long an enrolment begun (QR shown, no code typed yet) can be completed. */
const SETUP_TTL_MS = 30 * 60 * 1000;
/** What an app's secret is sealed for (SecretBox purpose; the enrolment id is the context). */
export const TOTP_SECRET_PURPOSE = 'totp-secret';

/** Seals an app's secret for its enrolment id, as an enrolment does (for apps brought along by `users import`). */
export const sealTotpSecret = (box: SecretBox) => (secret: string, enrolmentId: string) => box.seal(TOTP_SECRET_PURPOSE, secret, enrolmentId);
const UUID = /^[0-9a-f-]{36}$/i;
/** A user holds an app while a confirmed enrolment row of it is there. */
const HELD_AS: HeldAs = { type: 'totp' };

interface ConfirmedApp {
  id: string;
  label: string;
  secret: Uint8Array | null;
  data: unknown;
}

/**
 * An authenticator app (Google/Microsoft Authenticator, …): RFC 6238, SHA-1, 6 digits, 30 s, ±1 step.
 * Enrolled by scanning a QR code and typing one code; a user may have several apps, each named.
 * The secret is sealed with the master key (bound to the enrolment id); each code works once: the
 * enrolment's `data.lastStep` (the last accepted RFC 6238 time step) is advanced with one conditional
 * UPDATE, so a code of that step or an earlier one never works again and of parallel uses only one passes.
 */
export function totpFactor(deps: FactorDependencies): FactorModule {
  const { prisma, box, lock } = deps;

  /** A user's apps, read at every sign-in with one (straight through the driver). */
  const confirmedApps = async (user: User): Promise<ConfirmedApp[]> => {
    const rows = await driverOf(prisma).rows<ConfirmedApp>`
      SELECT id::text AS id, label, secret, data FROM factor_enrolments
       WHERE user_id = ${user.id}::uuid AND type = 'totp' AND confirmed = true
       ORDER BY position ASC, created_at DESC`;
    // A JSON column comes back as text or as a value, depending on the driver.
    return rows.map((row) => ({ ...row, data: typeof row.data === 'string' ? (JSON.parse(row.data) as unknown) : row.data }));
  };

  const openSecret = (row: { id: string; secret: Uint8Array | null }) =>
    row.secret ? box.open(TOTP_SECRET_PURPOSE, row.secret, row.id).toString('utf8') : undefined;

  /**
   * Accepts `step` for the enrolment only if it is later than the last accepted one (atomic), and
   * notes the sign-in (interaction uid) that used it: the same code again there is a double submit.
   */
  async function advance(id: string, userId: string, step: number, uid: string, confirm?: { label: string }): Promise<boolean> {
    const used = JSON.stringify({ lastStep: step, lastUid: uid });
    const count = confirm
      ? await driverOf(prisma).changed`
          UPDATE factor_enrolments
             SET data = data || ${used}::jsonb, last_used_at = now(), confirmed = true, label = ${confirm.label}
           WHERE id = ${id}::uuid AND user_id = ${userId}::uuid AND type = 'totp' AND confirmed = false`
      : await driverOf(prisma).changed`
          UPDATE factor_enrolments
             SET data = data || ${used}::jsonb, last_used_at = now()
           WHERE id = ${id}::uuid AND user_id = ${userId}::uuid AND type = 'totp' AND confirmed = true
             AND COALESCE((data->>'lastStep')::bigint, -1) < ${step}::bigint`;
    return count === 1;
  }

  async function pendingEnrolment(ctx: ChallengeContext, challengeId: string) {
    if (!UUID.test(challengeId)) return null;
    const row = await prisma.factorEnrolment.findFirst({ where: { id: challengeId, userId: ctx.user.id, type: 'totp', confirmed: false } });
    if (!row || row.createdAt.getTime() + SETUP_TTL_MS <= Date.now()) return null;
    return row;
  }

  const setupOf = (ctx: ChallengeContext, secret: string) => ({
    uri: otpauthUri({ issuer: deps.settings.totp.issuer, account: accountName(ctx.user), secret }),
    secret,
  });

  return {
    id: 'totp',
    channel: 'app',
    amr: ['otp'],
    kind: 'code',
    ...heldAs(prisma, HELD_AS),
    targets: async () => [],
    maskTarget: (label) => label,

    enrol: {
      // One pseudo-target: a new app can always be added (a user may have several).
      targets: async () => [{ id: 'new-app', masked: 'authenticator app' }],
      begin: async (ctx, input) => {
        // Setups never completed are forgotten.
        await prisma.factorEnrolment.deleteMany({
          where: { userId: ctx.user.id, type: 'totp', confirmed: false, createdAt: { lt: new Date(Date.now() - SETUP_TTL_MS) } },
        });
        const secret = newTotpSecret();
        const label = (input.label ?? '').trim().slice(0, 60);
        const row = await prisma.$transaction(async (tx) => {
          const created = await tx.factorEnrolment.create({ data: { userId: ctx.user.id, type: 'totp', label, position: 0, data: {} } });
          return tx.factorEnrolment.update({ where: { id: created.id }, data: { secret: box.seal(TOTP_SECRET_PURPOSE, secret, created.id) } });
        });
        return { status: 'started', challengeId: row.id, setup: setupOf(ctx, secret) };
      },
      setup: async (ctx, challengeId) => {
        const row = await pendingEnrolment(ctx, challengeId);
        const secret = row ? openSecret(row) : undefined;
        return secret ? setupOf(ctx, secret) : undefined;
      },
      complete: (ctx, input): Promise<VerifyOutcome> =>
        lock.answer(ctx.user.id, TOTP_FAMILY, async () => {
          const row = await pendingEnrolment(ctx, input.challengeId);
          if (!row) return { status: 'failed', reason: 'expired' };
          const step = await matchingStep(openSecret(row) ?? '', input.code ?? '');
          if (step === undefined) return { status: 'failed', reason: 'wrong_code' };
          const existing = await prisma.factorEnrolment.count({ where: { userId: ctx.user.id, type: 'totp', confirmed: true } });
          const label = (input.label ?? '').trim().slice(0, 60) || row.label || `Authenticator ${existing + 1}`;
          if (!(await advance(row.id, ctx.user.id, step, ctx.uid, { label }))) return { status: 'failed', reason: 'used' };
          return { status: 'verified', amr: ['otp'], target: label };
        }),
    },

    start: async (ctx) =>
      (await heldFor(prisma, ctx, HELD_AS)) ? { status: 'started', challengeId: APP_CHALLENGE } : { status: 'failed', reason: 'not_enrolled' },

    // Under the user's failure lock: wrong codes count, a right one (even repeated) never does.
    verify: (ctx, input): Promise<VerifyOutcome> =>
      lock.answer(ctx.user.id, TOTP_FAMILY, async () => {
        const code = (input.code ?? '').replace(/\s+/g, '');
        for (const app of await confirmedApps(ctx.user)) {
          const secret = openSecret(app);
          const step = secret ? await matchingStep(secret, code, undefined, totpOptionsOf(app.data)) : undefined;
          if (step === undefined) continue;
          if (await advance(app.id, ctx.user.id, step, ctx.uid)) return { status: 'verified', amr: ['otp'], target: app.label };
          // Right code, but its time step (or a later one) was already used: this sign-in's double submit, or a replay.
          const used = app.data as { lastStep?: number; lastUid?: string };
          const repeated = used.lastStep === step && used.lastUid === ctx.uid;
          return repeated ? { status: 'verified', amr: ['otp'], target: app.label, repeated } : { status: 'failed', reason: 'used' };
        }
        return { status: 'failed', reason: 'wrong_code' };
      }),
  };
}
