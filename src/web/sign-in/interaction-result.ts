import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { InteractionResults } from 'oidc-provider';

export type InteractionDetails = Awaited<ReturnType<Provider['interactionDetails']>>;

/** Every result but a login: a login is only ever given by SignInFlow.finish (sign-in-flow.ts), after the policy. */
export type NonLoginResult = Omit<InteractionResults, 'login'> & { login?: never };

/**
 * What provider.interactionResult(…, { mergeWithLastSubmission: false }) does, on the interaction the
 * request has already loaded (and checked against the browser's cookie) instead of reading it again:
 * store the result and send the browser back to the authorization endpoint.
 */
export function completeInteraction(ctx: Context, details: InteractionDetails, result: NonLoginResult) {
  return storeResult(ctx, details, result);
}

/** For SignInFlow only: stores any result, a login included. */
export async function storeResult(ctx: Context, details: InteractionDetails, result: InteractionResults) {
  details.result = result;
  await details.save(details.exp - Math.floor(Date.now() / 1000));
  ctx.status = 303;
  ctx.redirect(details.returnTo);
}
