import type { Accounts, SignInNames } from '../../accounts/accounts.ts';
import type { AuditLog } from '../../accounts/audit.ts';
import type { ChallengeScope, StartOutcome, VerifyOutcome } from '../../factors/contract.ts';
import type { MailQueue } from '../../factors/deps.ts';
import { newCode, type ChallengeStore } from '../../factors/shared/challenges.ts';
import { admitSend } from '../../factors/shared/send-admission.ts';
import type { SendGuard } from '../../factors/shared/send-guard.ts';
import type { User } from '../../generated/prisma/client.ts';
import { translator, type Translate } from '../../i18n/i18n.ts';
import type { Locale } from '../../i18n/locales.ts';
import type { SecretBox } from '../../security/crypto.ts';
import type { PrismaClient } from '../../storage/db.ts';

/** The challenge kind (and failure-lock family) of a reset code. */
export const RESET_CHALLENGE = 'password-reset';

export interface PasswordResetDependencies {
  prisma: PrismaClient;
  accounts: Accounts;
  challenges: ChallengeStore;
  /** The mail channel's cooldown and budgets, shared with the sign-in codes. */
  mailGuard: SendGuard;
  mail: MailQueue;
  box: SecretBox;
  audit: AuditLog;
  ttlSeconds: number;
}

/** One reset request: the interaction and browser it belongs to, the language and the client's name for the mail. */
export type ResetRequest = Omit<ChallengeScope, 'user'> & { locale: Locale; clientName: string };

/**
 * "Forgot your password?": a one-time code to the verified addresses of the account a name belongs
 * to, bound to the interaction it was asked in. A name that belongs to no account (or to one without
 * a verified address) gets the same answer, budgets and cooldown: a decoy challenge, owned by a
 * keyed hash of the name, that no code can answer. A right code proves the mailbox only; the new
 * password it allows waits in the sign-in until the sign-in ends (SignInFlow.finish).
 */
export class PasswordResets {
  constructor(private readonly deps: PasswordResetDependencies) {}

  async send(request: ResetRequest, typed: string, accepted: SignInNames): Promise<StartOutcome> {
    const { prisma, challenges, mail } = this.deps;
    const name = typed.normalize('NFKC').trim().toLowerCase();
    const found = await this.deps.accounts.findByLogin(name, accepted);
    const user = found?.status === 'active' ? found : null;
    const addresses = user ? await this.verifiedAddresses(user) : [];
    const real = user !== null && addresses.length > 0;
    const scope: ChallengeScope = { ...request, user: { id: real ? user.id : this.decoyOwner(name) } };
    const held = await admitSend(prisma, this.deps.mailGuard, scope, { factor: RESET_CHALLENGE, target: name, masked: '' });
    if (held) return held;
    const code = newCode();
    const challenge = await prisma.$transaction(async (tx) => {
      const created = await challenges.create(tx, scope, { factor: RESET_CHALLENGE, target: name, ttlSeconds: this.deps.ttlSeconds, code, decoy: !real });
      for (const to of addresses) await mail.enqueue(tx, this.mail(translator(request.locale), to, code, request));
      return created.challenge;
    });
    if (real) {
      mail.kick();
      await this.deps.audit.record('user.password_reset_requested', {
        userId: user.id,
        data: { client: request.clientId, addresses: addresses.length },
        ip: request.ip,
        userAgent: request.userAgent,
      });
    }
    return { status: 'started', challengeId: challenge.id, maskedTarget: '' };
  }

  /** Checks a typed code (single use, under the failure lock of the account or decoy it was sent for). */
  async verify(request: ResetRequest, challengeId: string, code: string): Promise<VerifyOutcome> {
    const owner = await this.ownerOf(request, challengeId);
    if (!owner) return { status: 'failed', reason: 'expired' };
    return this.deps.challenges.verifyCode({ ...request, user: { id: owner } }, challengeId, code, RESET_CHALLENGE, [RESET_CHALLENGE]);
  }

  /** The user a right code was typed for, while the new password may still be chosen; undefined otherwise. */
  async verifiedUser(request: ResetRequest, challengeId: string): Promise<string | undefined> {
    if (!isUuid(challengeId)) return undefined;
    const row = await this.deps.prisma.factorChallenge.findFirst({
      where: { id: challengeId, uid: request.uid, factor: RESET_CHALLENGE, verifiedAt: { not: null }, expiresAt: { gt: new Date() } },
      select: { userId: true, data: true },
    });
    return row && !(row.data as { passwordChosen?: boolean }).passwordChosen ? row.userId : undefined;
  }

  /** Takes the right to choose a password, once: of parallel requests exactly one gets the user. */
  async claim(request: ResetRequest, challengeId: string): Promise<string | undefined> {
    if (!isUuid(challengeId)) return undefined;
    const rows = await this.deps.prisma.$queryRaw<Array<{ userId: string }>>`
      UPDATE factor_challenges SET data = data || '{"passwordChosen": true}'::jsonb
       WHERE id = ${challengeId}::uuid AND uid = ${request.uid} AND factor = ${RESET_CHALLENGE}
         AND verified_at IS NOT NULL AND expires_at > now() AND NOT (data ? 'passwordChosen')
      RETURNING user_id::text AS "userId"`;
    return rows[0]?.userId;
  }

  /** The name a reset code was asked for (shown again with a wrong code). */
  async nameOf(request: ResetRequest, challengeId: string): Promise<string | undefined> {
    if (!isUuid(challengeId)) return undefined;
    const row = await this.deps.prisma.factorChallenge.findFirst({
      where: { id: challengeId, uid: request.uid, factor: RESET_CHALLENGE },
      select: { target: true },
    });
    return row?.target ?? undefined;
  }

  private async ownerOf(request: ResetRequest, challengeId: string): Promise<string | undefined> {
    if (!isUuid(challengeId)) return undefined;
    const row = await this.deps.prisma.factorChallenge.findFirst({
      where: { id: challengeId, uid: request.uid, factor: RESET_CHALLENGE },
      select: { userId: true },
    });
    return row?.userId;
  }

  private async verifiedAddresses(user: User): Promise<string[]> {
    const rows = await this.deps.prisma.userEmail.findMany({ where: { userId: user.id, verifiedAt: { not: null } }, orderBy: { createdAt: 'asc' } });
    return rows.map((row) => row.address);
  }

  /** A stable stand-in owner for a name no account has: its budgets and lock work like an account's. */
  private decoyOwner(name: string): string {
    const hex = Buffer.from(this.deps.box.mac('password-reset-decoy', name), 'base64url').toString('hex');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
  }

  private mail(t: Translate, to: string, code: string, request: ResetRequest) {
    const minutes = Math.round(this.deps.ttlSeconds / 60);
    const text = [
      t('mail.greeting'),
      '',
      t('password_reset.mail_text', { client: request.clientName, minutes }),
      '',
      `    ${code}`,
      '',
      t('password_reset.mail_not_you'),
    ].join('\n');
    return { to, subject: t('password_reset.mail_subject', { code }), text, purpose: RESET_CHALLENGE, locale: request.locale, clientId: request.clientId };
  }
}

const isUuid = (value: string) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);
