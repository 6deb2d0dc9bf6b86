import { TOTP_SECRET_PURPOSE } from '../../src/factors/totp/index.ts';
import { newTotpSecret, totpCode } from '../../src/factors/totp/otp.ts';
import type { TestNyckel } from './nyckel.ts';

/**
 * The code an authenticator app shows `steps` time steps from now (−1 and +1 are within the accepted
 * drift). Each code works once and no earlier step works after a later one, so tests walk forwards in
 * time. Near the end of a step it waits for the next one, so the step cannot change under a request.
 */
export async function codeAt(secret: string, steps: number): Promise<string> {
  const intoStep = (Date.now() / 1000) % 30;
  if (intoStep > 27) await new Promise((resolve) => setTimeout(resolve, (30 - intoStep + 0.2) * 1000));
  return totpCode(secret, Math.floor(Date.now() / 1000) + steps * 30);
}

/** The key an enrolment page shows for typing by hand (grouped by four), without the spaces. */
export function secretIn(html: string): string {
  const match = /<code class="secret">([^<]+)<\/code>/.exec(html);
  if (!match) throw new Error('no setup key in the page');
  return match[1].replace(/\s+/g, '');
}

/** Gives the user a confirmed authenticator app, as enrolment would, and returns its secret for codeAt. */
export async function withAuthenticatorApp(nyckel: TestNyckel, userId: string): Promise<string> {
  const secret = newTotpSecret();
  const row = await nyckel.db.prisma.factorEnrolment.create({ data: { userId, type: 'totp', label: 'Phone', confirmed: true } });
  await nyckel.db.prisma.factorEnrolment.update({ where: { id: row.id }, data: { secret: Buffer.from(nyckel.box.seal(TOTP_SECRET_PURPOSE, secret, row.id)) } });
  return secret;
}
