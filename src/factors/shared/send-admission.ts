import { setTimeout as sleep } from 'node:timers/promises';
import type { PrismaClient } from '../../storage/db.ts';
import type { ChallengeScope, StartOutcome } from '../contract.ts';
import type { SendGuard } from './send-guard.ts';

/** How long a request refused by the cooldown waits for a parallel one of the same sign-in to write its challenge. */
const PARALLEL_WAIT_MS = 3000;
const POLL_MS = 50;

export interface SendRequest {
  /** The challenge's factor (`email-code`, `email-enrolment`, `sms`, …). */
  factor: string;
  /** The address or number, as the challenge stores it. */
  target: string;
  /** As the pages show it. */
  masked: string;
  /** "Resend code" on the code page: a refusal is shown there, there is nothing to continue to. */
  resend?: boolean;
  /** More to say in the audit event of a refusal (e.g. the number's country). */
  audit?: Record<string, unknown>;
}

/**
 * Undefined when a challenge may be sent to the target now; otherwise the answer to give instead.
 * Within the cooldown, a second "Send code" of the same sign-in (a double click, a reload, eight
 * posts at once) continues to the challenge already sent to that target and sends nothing new; a
 * send from another sign-in, a resend or a spent budget is refused (audited, and counted by the
 * factor metrics as `cooldown` or `<channel>_budget`) with the time to wait.
 */
export async function admitSend(prisma: PrismaClient, guard: SendGuard, ctx: ChallengeScope, send: SendRequest): Promise<StartOutcome | undefined> {
  const refusal = await guard.take(ctx, send.target);
  if (!refusal) return undefined;
  if (refusal.reason === 'cooldown' && !send.resend) {
    const sent = await challengeAlreadySent(prisma, ctx, send, Math.max(0, PARALLEL_WAIT_MS - (refusal.sentAgoMs ?? PARALLEL_WAIT_MS)));
    if (sent) return { status: 'started', challengeId: sent, maskedTarget: send.masked };
  }
  await guard.recordRefusal(ctx, refusal, { to: send.masked, ...send.audit });
  return { status: 'failed', reason: refusal.reason === 'cooldown' ? 'cooldown' : 'rate_limited', retryAfterSeconds: refusal.retryAfterSeconds };
}

/**
 * The open challenge this sign-in has for the target. A send admitted only just now (by a parallel
 * request) may not have written it yet: it is looked for again until `waitMs` has passed.
 */
async function challengeAlreadySent(prisma: PrismaClient, ctx: ChallengeScope, send: SendRequest, waitMs: number): Promise<string | undefined> {
  const target = send.target.trim().toLowerCase();
  const deadline = Date.now() + waitMs;
  for (;;) {
    const open = await prisma.factorChallenge.findMany({
      where: { uid: ctx.uid, userId: ctx.user.id, factor: send.factor, consumedAt: null, expiresAt: { gt: new Date() } },
      select: { id: true, target: true },
      orderBy: { createdAt: 'desc' },
    });
    const found = open.find((row) => row.target?.trim().toLowerCase() === target);
    if (found || Date.now() >= deadline) return found?.id;
    await sleep(POLL_MS);
  }
}
