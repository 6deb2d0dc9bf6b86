import { randomInt, randomUUID, timingSafeEqual } from 'node:crypto';
import type { FactorModule, VerifyOutcome } from '../../../src/factors/contract.ts';

/**
 * A second factor that exists only in the tests: the service desk hands the user a card with a
 * six-digit code (shown as the setup key at enrolment), typed at every sign-in. Kept in memory.
 */
export function deskCodeModule(): FactorModule {
  const cards = new Map<string, string>();
  const pending = new Map<string, { userId: string; code: string }>();
  const same = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
  const wrong: VerifyOutcome = { status: 'failed', reason: 'wrong_code' };

  return {
    id: 'desk-code',
    channel: 'device',
    amr: ['hwk'],
    kind: 'code',
    isEnrolled: async (user) => cards.has(user.id),
    targets: async () => [],
    maskTarget: () => '',
    enrol: {
      createsCredential: true,
      targets: async () => [{ id: 'new-card', masked: 'service desk card' }],
      async begin(ctx) {
        const challengeId = randomUUID();
        pending.set(challengeId, { userId: ctx.user.id, code: String(randomInt(100000, 1000000)) });
        return { status: 'started', challengeId };
      },
      async setup(ctx, challengeId) {
        const card = pending.get(challengeId);
        return card?.userId === ctx.user.id ? { uri: `desk-code:${card.code}`, secret: card.code } : undefined;
      },
      async complete(ctx, { challengeId, code = '' }) {
        const card = pending.get(challengeId);
        if (!card || card.userId !== ctx.user.id) return { status: 'failed', reason: 'expired' };
        if (!same(card.code, code)) return wrong;
        pending.delete(challengeId);
        cards.set(ctx.user.id, card.code);
        return { status: 'verified', amr: ['hwk'] };
      },
    },
    start: async () => ({ status: 'started', challengeId: randomUUID() }),
    async verify(ctx, { code = '' }) {
      const card = cards.get(ctx.user.id);
      return card && same(card, code) ? { status: 'verified', amr: ['hwk'] } : wrong;
    },
  };
}
