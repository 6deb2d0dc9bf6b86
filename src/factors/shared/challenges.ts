import crypto from 'node:crypto';
import type { FactorChallenge } from '../../generated/prisma/client.ts';
import { safeEqual, randomToken, type SecretBox } from '../../security/crypto.ts';
import type { PrismaClient } from '../../storage/db.ts';
import type { ChallengeScope, VerifyOutcome } from '../contract.ts';
import type { FailureLock } from './failure-lock.ts';
import type { Signals } from '../../storage/signals.ts';

type Tx = Omit<PrismaClient, '$connect' | '$disconnect' | '$on' | '$transaction' | '$extends'>;

export const CODE_DIGITS = 6;

/** The signal topic of one challenge (src/storage/signals.ts). */
export const challengeTopic = (challengeId: string) => `challenge:${challengeId}`;

export function newCode(): string {
  return crypto
    .randomInt(0, 10 ** CODE_DIGITS)
    .toString()
    .padStart(CODE_DIGITS, '0');
}

/**
 * One-time codes and link tokens of the factors that send something. Only keyed hashes are stored;
 * answers are compared in constant time; a challenge is consumed by one conditional UPDATE, so of
 * parallel right answers exactly one wins; wrong answers count against the user's failure lock.
 */
export class ChallengeStore {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly box: SecretBox,
    private readonly lock: FailureLock,
    /** Tells a page waiting on the challenge (an email link opened in another tab) that it was answered. */
    private readonly signals?: Signals,
  ) {}

  private hash(kind: 'code' | 'link' | 'browser', value: string): string {
    return this.box.mac(`challenge-${kind}`, value);
  }

  browserHash(browserSeed: string): string {
    return this.hash('browser', browserSeed);
  }

  /** Creates a challenge (closing earlier open ones of the same sign-in and factor) inside `tx`. */
  async create(
    tx: Tx,
    ctx: ChallengeScope,
    input: { factor: string; target?: string; ttlSeconds: number; code?: string; withLink?: boolean; decoy?: boolean; sends?: number },
  ): Promise<{ challenge: FactorChallenge; linkToken?: string }> {
    await tx.factorChallenge.updateMany({
      where: { uid: ctx.uid, userId: ctx.user.id, factor: input.factor, consumedAt: null },
      data: { consumedAt: new Date() },
    });
    const linkToken = input.withLink ? randomToken(32) : undefined;
    const challenge = await tx.factorChallenge.create({
      data: {
        uid: ctx.uid,
        userId: ctx.user.id,
        factor: input.factor,
        target: input.target ?? null,
        // A decoy (an address that is not registered) gets no secret, so nothing can ever match it.
        secretHash: input.code && !input.decoy ? this.hash('code', input.code) : null,
        browserHash: ctx.browserHash,
        sends: input.sends ?? 1,
        data: { ...(linkToken && !input.decoy ? { linkHash: this.hash('link', linkToken) } : {}), ...(input.decoy ? { decoy: true } : {}) },
        expiresAt: new Date(Date.now() + input.ttlSeconds * 1000),
      },
    });
    return { challenge, linkToken };
  }

  /** The sign-in's challenge of `factor` still waiting for its answer (sent and not expired), if any. */
  async open(ctx: ChallengeScope, factor: string): Promise<string | undefined> {
    const row = await this.prisma.factorChallenge.findFirst({
      where: { uid: ctx.uid, userId: ctx.user.id, factor, consumedAt: null, expiresAt: { gt: new Date() } },
      select: { id: true },
      orderBy: { createdAt: 'desc' },
    });
    return row?.id;
  }

  find(ctx: ChallengeScope, challengeId: string, factors: string[]): Promise<FactorChallenge | null> {
    if (!/^[0-9a-f-]{36}$/i.test(challengeId)) return Promise.resolve(null);
    return this.prisma.factorChallenge.findFirst({ where: { id: challengeId, userId: ctx.user.id, uid: ctx.uid, factor: { in: factors } } });
  }

  /** Checks a typed code against the challenge; `family` names the failure lock (e.g. `email`). */
  async verifyCode(ctx: ChallengeScope, challengeId: string, code: string, family: string, factors: string[]): Promise<VerifyOutcome> {
    return this.verify(
      ctx,
      challengeId,
      family,
      factors,
      (challenge) => Boolean(challenge.secretHash) && safeEqual(this.hash('code', code.replace(/\s+/g, '')), challenge.secretHash!),
    );
  }

  /**
   * Checks an answer with someone else (Twilio Verify makes and checks SMS codes): the same failure
   * lock, single use and outcomes as verifyCode. `check` is only asked about an open challenge.
   */
  async verifyExternally(
    ctx: ChallengeScope,
    challengeId: string,
    family: string,
    factors: string[],
    check: (challenge: FactorChallenge) => boolean | Promise<boolean>,
  ): Promise<VerifyOutcome> {
    const challenge = await this.find(ctx, challengeId, factors);
    if (challenge?.consumedAt) return { status: 'failed', reason: 'used' };
    if (challenge && challenge.expiresAt <= new Date()) return { status: 'failed', reason: 'expired' };
    // Someone else's check cannot be asked twice (Twilio forgets an approved code): no repeats.
    return this.verify(ctx, challengeId, family, factors, check, { repeatable: false });
  }

  /** Checks a link token; the link completes only in the browser that started the sign-in. */
  async verifyLink(ctx: ChallengeScope, challengeId: string, token: string, family: string, factors: string[]): Promise<VerifyOutcome> {
    const challenge = await this.find(ctx, challengeId, factors);
    if (challenge && challenge.browserHash && !safeEqual(challenge.browserHash, ctx.browserHash)) {
      return { status: 'failed', reason: 'other_browser' };
    }
    return this.verify(ctx, challengeId, family, factors, (row) => {
      const linkHash = (row.data as { linkHash?: string }).linkHash;
      return Boolean(linkHash) && safeEqual(this.hash('link', token), linkHash!);
    });
  }

  /**
   * One answer to a challenge, under the user's failure lock (see FailureLock.answer): a wrong answer
   * counts; a right one consumes the challenge in one conditional UPDATE, so of parallel right answers
   * exactly one wins, and the others, in the same sign-in, are the same answer repeated.
   */
  private verify(
    ctx: ChallengeScope,
    challengeId: string,
    family: string,
    factors: string[],
    matches: (challenge: FactorChallenge) => boolean | Promise<boolean>,
    options: { repeatable: boolean } = { repeatable: true },
  ): Promise<VerifyOutcome> {
    return this.lock.answer(ctx.user.id, family, async () => {
      const challenge = await this.find(ctx, challengeId, factors);
      if (!challenge) return { status: 'failed', reason: 'expired' };
      if (!options.repeatable && challenge.consumedAt) return { status: 'failed', reason: 'used' };
      if (!(await matches(challenge))) {
        await this.prisma.factorChallenge.update({ where: { id: challenge.id }, data: { attempts: { increment: 1 } } });
        return { status: 'failed', reason: 'wrong_code' };
      }
      // Answered already by this sign-in (find is bound to it); a challenge closed by a newer one has no verifiedAt.
      if (challenge.verifiedAt) return { status: 'verified', amr: [], target: challenge.target ?? undefined, repeated: true };
      if (challenge.consumedAt) return { status: 'failed', reason: 'used' };
      if (challenge.expiresAt <= new Date()) return { status: 'failed', reason: 'expired' };
      const now = new Date();
      const { count } = await this.prisma.factorChallenge.updateMany({
        where: { id: challenge.id, consumedAt: null, expiresAt: { gt: now } },
        data: { consumedAt: now, verifiedAt: now },
      });
      if (count === 0) return { status: 'failed', reason: 'used' };
      await this.signals?.notify(challengeTopic(challenge.id));
      return { status: 'verified', amr: [], target: challenge.target ?? undefined };
    });
  }

  /** `used` or `expired` for a challenge that can no longer be answered; undefined otherwise. */
  async spent(challengeId: string): Promise<'used' | 'expired' | undefined> {
    if (!/^[0-9a-f-]{36}$/i.test(challengeId)) return undefined;
    const challenge = await this.prisma.factorChallenge.findUnique({ where: { id: challengeId }, select: { consumedAt: true, expiresAt: true } });
    if (!challenge) return undefined;
    if (challenge.consumedAt) return 'used';
    return challenge.expiresAt <= new Date() ? 'expired' : undefined;
  }

  /** Whether a challenge has been answered (the waiting page of a link asks this). */
  async isVerified(ctx: ChallengeScope, challengeId: string, factors: string[]): Promise<boolean> {
    const challenge = await this.find(ctx, challengeId, factors);
    return Boolean(challenge?.verifiedAt);
  }
}
