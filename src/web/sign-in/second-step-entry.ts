import type { Context } from 'koa';
import type { FactorModule } from '../../factors/contract.ts';
import type { Offer, SecondFactorPolicy, SignInProgress } from '../../factors/policy.ts';
import type { User } from '../../generated/prisma/client.ts';

/** The method this sign-in is on: where the second step returns to (the user's choice is kept). */
export const CURRENT_METHOD = 'nyckel.method';

/** The method to go straight to: the one the user is on, else the primary (the first offered); never only a backup when another is there. */
function preferredMethod(ctx: Context, offered: readonly FactorModule[]): FactorModule | undefined {
  const current = ctx.cookies.get(CURRENT_METHOD);
  const chosen = offered.find((m) => m.id === current);
  if (chosen) return chosen;
  return offered.find((m) => m.channel !== 'backup') ?? offered[0];
}

export interface SecondStepQuestion {
  user: User;
  uid: string;
  clientId: string;
  progress: SignInProgress;
  /** "Use another method": the list, whatever the user is on. */
  choose: boolean;
  /** The methods offered, when this request has already asked (`policy.offeredAs` for this progress). */
  offer?: Offer;
}

/** Where the second step goes: a page to go on to, or the list of methods to show (and what for). */
export type SecondStepEntry = { redirect: string } | { choose: Offer };

/**
 * Where the second step of a sign-in begins: adding a method when none is offered; else the method the
 * user is on (chosen with "Use another method") or the primary, at once (`?send=1`: TDC's code box right
 * after the password); else the list. A proof (a method this client does not take, which opens the
 * way to add one) is explained on the list first. The password step sends the browser straight here.
 */
export async function secondStepEntry(ctx: Context, policy: SecondFactorPolicy, question: SecondStepQuestion): Promise<SecondStepEntry> {
  const { modules, purpose } = question.offer ?? (await policy.offeredAs(question.user, question.clientId, question.progress));
  const mfaPath = `/interaction/${question.uid}/mfa`;
  if (modules.length === 0) return { redirect: `${mfaPath}/enrol` };
  const preferred = purpose === 'sign-in' && !question.choose ? preferredMethod(ctx, modules) : undefined;
  if (preferred) return { redirect: `${mfaPath}/${preferred.id}?send=1` };
  return { choose: { modules, purpose } };
}
