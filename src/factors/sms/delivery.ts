import type { Logger } from '../../logger.ts';
import type { ChallengeContext } from '../contract.ts';
import type { FactorDependencies } from '../deps.ts';
import { translator } from '../../i18n/i18n.ts';
import { maskPhone } from '../shared/mask.ts';
import type { SmsTransport } from './transport.ts';

/**
 * Handing a code to the SMS provider: the text (with the WebOTP line), a send now or after the
 * answer (a typed number), and a failure audited and logged without the code.
 */
export function smsDelivery(deps: FactorDependencies, transport: SmsTransport, purpose: string, log?: Logger) {
  function text(ctx: ChallengeContext, code: string): string {
    const t = translator(ctx.locale);
    const minutes = Math.round(deps.settings.sms.codeTtl / 60);
    // The last line lets browsers (WebOTP) and iOS offer the code, bound to the issuer's host.
    return `${t('sms.text', { client: ctx.clientName, code, minutes })}\n\n@${new URL(ctx.issuer).hostname} #${code}`;
  }

  /** Hands the text (or Twilio Verify's start) to the provider; throws when it fails. */
  async function deliver(ctx: ChallengeContext, e164: string, code: string): Promise<void> {
    if (transport.kind === 'text') await transport.send({ to: e164, body: text(ctx, code), purpose });
    else await transport.start({ to: e164, locale: ctx.locale });
  }

  async function recordSendFailure(ctx: ChallengeContext, e164: string, error: unknown): Promise<void> {
    const message = error instanceof Error ? error.message : 'unknown error';
    log?.warn({ transport: transport.name, to: maskPhone(e164), error: message }, 'SMS could not be sent');
    await deps.sms?.audit.record('sms.failed', {
      userId: ctx.user.id,
      ip: ctx.ip,
      userAgent: ctx.userAgent,
      data: { transport: transport.name, to: maskPhone(e164), error: message },
    });
  }

  /** After the answer: a failure is recorded on the challenge, and its code page says the text could not be sent. */
  function deliverLater(ctx: ChallengeContext, challengeId: string, e164: string, code: string): void {
    deps.background.run('sms send', async () => {
      try {
        await deliver(ctx, e164, code);
      } catch (error) {
        await recordSendFailure(ctx, e164, error);
        const row = await deps.prisma.factorChallenge.findUnique({ where: { id: challengeId }, select: { data: true } });
        if (row) await deps.prisma.factorChallenge.update({ where: { id: challengeId }, data: { data: { ...(row.data as object), deliveryFailed: true } } });
      }
    });
  }

  return { deliver, recordSendFailure, deliverLater };
}
