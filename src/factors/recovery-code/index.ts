import { accountName } from '../../accounts/accounts.ts';
import { noticeAddressOf } from '../../accounts/notice-address.ts';
import crypto from 'node:crypto';
import { translator } from '../../i18n/i18n.ts';
import type { SecretBox } from '../../security/crypto.ts';
import type { ChallengeContext, FactorModule, VerifyOutcome } from '../contract.ts';
import type { FactorDependencies, Transaction } from '../deps.ts';
import { heldAs, heldFor, type HeldAs } from '../shared/held-enrolments.ts';
import { noEnrolmentAtSignIn } from '../shared/no-enrolment.ts';

export const RECOVERY_FAMILY = 'recovery-code';
/** The challenge id of a sign-in with a recovery code: nothing is sent. */
export const BACKUP_CHALLENGE = 'backup';
/** After every other method in the user's own order. */
const POSITION = 1000;
/** Base32 without the letters and digits that are easy to mix up (no 0/o, 1/l/i, u). */
const ALPHABET = 'abcdefghjkmnpqrstvwxyz23456789';
const MAC_PURPOSE = 'recovery-code';

/** `xxxxx-xxxxx`: 10 random characters of a 30-letter alphabet (~49 bits), grouped for reading. */
export function newRecoveryCode(): string {
  const chars = Array.from({ length: 10 }, () => ALPHABET[crypto.randomInt(0, ALPHABET.length)]);
  return `${chars.slice(0, 5).join('')}-${chars.slice(5).join('')}`;
}

/** What the user typed, as it is hashed: lower case, without spaces and dashes. */
export function normaliseRecoveryCode(typed: string): string {
  return typed.toLowerCase().replace(/[\s-]+/g, '');
}

type Db = Pick<Transaction, 'factorEnrolment'>;

/** The keyed hash a code is stored as (bound to the user: a code of one user is nothing for another). */
export const hashOf = (box: SecretBox, userId: string, code: string) => box.mac(MAC_PURPOSE, `${userId}:${normaliseRecoveryCode(code)}`);

/**
 * Replaces a user's recovery codes with `count` new ones and returns them: the only time they exist
 * in clear text. Call inside a transaction (the old codes stop working as the new ones appear).
 */
export async function replaceRecoveryCodes(db: Db, box: SecretBox, userId: string, count: number): Promise<string[]> {
  const codes = Array.from({ length: count }, newRecoveryCode);
  await db.factorEnrolment.deleteMany({ where: { userId, type: 'recovery-code' } });
  await db.factorEnrolment.createMany({
    data: codes.map((code, i) => ({
      userId,
      type: 'recovery-code',
      label: `#${i + 1}`,
      data: { hash: hashOf(box, userId, code) },
      position: POSITION,
      confirmed: true,
    })),
  });
  return codes;
}

/** A user holds recovery codes while one of them is unused. */
const HELD_AS: HeldAs = { type: 'recovery-code', unusedOnly: true };

/** How many of a user's recovery codes are still unused. */
export function unusedRecoveryCodes(db: Db, userId: string): Promise<number> {
  return db.factorEnrolment.count({ where: { userId, type: 'recovery-code', lastUsedAt: null } });
}

export interface RecoveryCodeModule extends FactorModule {
  /** New codes replacing any earlier ones (for account pages and the CLI). Shown once: only hashes are kept. */
  regenerate(userId: string): Promise<string[]>;
  /** New codes when the user has no unused ones (after a second factor is enrolled); undefined otherwise. */
  ensure(userId: string): Promise<string[] | undefined>;
  /** How many unused codes the user has. */
  remaining(userId: string): Promise<number>;
}

export function isRecoveryCodeModule(module: FactorModule | undefined): module is RecoveryCodeModule {
  return Boolean(module && module.id === 'recovery-code' && 'ensure' in module);
}

/**
 * Recovery codes: single-use codes for when the phone with the authenticator app is lost. They are
 * generated at the first second-factor enrolment, shown once, and stored as keyed hashes (they are
 * random enough that a MAC is as good as a slow hash). Each code is one `factor_enrolments` row; using
 * one is one conditional UPDATE (`last_used_at IS NULL`), so of parallel uses exactly one passes.
 * `amr` is `otp` (RFC 8176: a one-time password); the channel `backup` counts as its own factor.
 */
export function recoveryCodeFactor(deps: FactorDependencies): RecoveryCodeModule {
  const { prisma, box, lock } = deps;
  const hash = (userId: string, code: string) => hashOf(box, userId, code);
  const unused = (userId: string) => unusedRecoveryCodes(prisma, userId);
  const replace = (tx: Transaction, userId: string) => replaceRecoveryCodes(tx, box, userId, deps.settings.recoveryCodes);

  function usedMail(ctx: ChallengeContext, to: string, left: number) {
    const t = translator(ctx.locale);
    const text = [
      t('mail.greeting'),
      '',
      t('mail.recovery_used.text', { user: accountName(ctx.user), client: ctx.clientName, left }),
      '',
      t(left > 0 ? 'mail.recovery_used.advice' : 'mail.recovery_used.none_left'),
      '',
      t('mail.not_you'),
    ].join('\n');
    return { to, subject: t('mail.recovery_used.subject', { left }), text, purpose: 'recovery-code-used', locale: ctx.locale, clientId: ctx.clientId };
  }

  /** Uses one unused code in one conditional UPDATE, noting the sign-in (a double submit there repeats). */
  async function useCode(ctx: ChallengeContext, typed: string): Promise<VerifyOutcome> {
    if (!/^[a-z0-9]{10}$/.test(typed)) return { status: 'failed', reason: 'wrong_code' };
    const codeHash = hash(ctx.user.id, typed);
    const left = await prisma.$transaction(async (tx) => {
      const count = await tx.$executeRaw`
        UPDATE factor_enrolments SET last_used_at = now(), data = data || ${JSON.stringify({ usedIn: ctx.uid })}::jsonb
         WHERE user_id = ${ctx.user.id}::uuid AND type = 'recovery-code' AND last_used_at IS NULL AND data->>'hash' = ${codeHash}`;
      if (count !== 1) return undefined;
      const remaining = await unusedRecoveryCodes(tx, ctx.user.id);
      const to = await noticeAddressOf(tx, ctx.user);
      if (to) await deps.mail.enqueue(tx, usedMail(ctx, to, remaining));
      return remaining;
    });
    const notice = (count: number) => ({ key: 'factors.recovery-code.left', values: { count } });
    if (left !== undefined) return { status: 'verified', amr: ['otp'], notice: notice(left) };
    const used = await prisma.factorEnrolment.findFirst({
      where: { userId: ctx.user.id, type: 'recovery-code', lastUsedAt: { not: null }, data: { path: ['hash'], equals: codeHash } },
    });
    if (!used) return { status: 'failed', reason: 'wrong_code' };
    if ((used.data as { usedIn?: string }).usedIn !== ctx.uid) return { status: 'failed', reason: 'used' };
    return { status: 'verified', amr: ['otp'], notice: notice(await unused(ctx.user.id)), repeated: true };
  }

  return {
    id: 'recovery-code',
    channel: 'backup',
    amr: ['otp'],
    kind: 'code',
    ...heldAs(prisma, HELD_AS),
    targets: async () => [],
    maskTarget: (label) => label,
    // Not enrolled on their own: they come with the first other second factor.
    enrol: noEnrolmentAtSignIn,

    start: async (ctx) =>
      (await heldFor(prisma, ctx, HELD_AS)) ? { status: 'started', challengeId: BACKUP_CHALLENGE } : { status: 'failed', reason: 'not_enrolled' },

    // Under the user's failure lock: wrong codes count, a right one (even repeated) never does.
    verify: async (ctx, input): Promise<VerifyOutcome> => {
      const outcome = await lock.answer(ctx.user.id, RECOVERY_FAMILY, () => useCode(ctx, normaliseRecoveryCode(input.code ?? '')));
      if (outcome.status === 'verified' && !outcome.repeated) deps.mail.kick();
      return outcome;
    },

    regenerate: (userId) => prisma.$transaction((tx) => replace(tx, userId)),
    ensure: (userId) =>
      prisma.$transaction(async (tx) => {
        const remaining = await unusedRecoveryCodes(tx, userId);
        return remaining > 0 ? undefined : replace(tx, userId);
      }),
    remaining: unused,
  };
}
