import { errors, interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';
import { acr } from '../factors/acr.ts';
import { storageFaultsAs503 } from '../storage/adapter-faults.ts';

/** Whether the signed-in session must add a second factor for this authorization request. */
export type NeedsSecondFactor = (ctx: KoaContextWithOIDC) => Promise<boolean>;

/**
 * A session whose account is gone or disabled asks for a fresh sign-in: oidc-provider would otherwise
 * go on without an account (findAccount found none) and fail with a 500 on the consent checks.
 */
const accountUnavailable = new interactionPolicy.Check('account_unavailable', 'the account of the session is no longer active', 'login_required', (ctx) =>
  ctx.oidc.session?.accountId && !ctx.oidc.account ? interactionPolicy.Check.REQUEST_PROMPT : interactionPolicy.Check.NO_NEED_TO_PROMPT,
);

/**
 * An essential `acr` claim (the claims parameter) as Nyckel can meet it. With the second factor's
 * class among its values it is step-up, like `acr_values` (`second_factor_required` asks for the
 * factor). Any other class the session does not have cannot be reached by signing in again, so the
 * request fails (OIDC Core 5.5.1.1: a failed authentication) instead of looping through the login.
 * Replaces oidc-provider's essential_acr and essential_acrs checks, which would ask for the password again.
 */
const essentialAcr = new interactionPolicy.Check('essential_acr', 'requested ACR could not be obtained', (ctx) => {
  const requested = ctx.oidc.claims?.id_token?.acr as { essential?: boolean; value?: unknown; values?: unknown } | undefined;
  if (!requested?.essential) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
  const values = requested.values ?? (requested.value === undefined ? [] : [requested.value]);
  if (!Array.isArray(values)) throw new errors.InvalidRequest('invalid claims.id_token.acr.values type');
  if (!ctx.oidc.session?.accountId || values.length === 0) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
  if (values.includes(ctx.oidc.acr) || values.includes(acr.mfa)) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
  throw new errors.UnmetAuthenticationRequirements(`none of the requested authentication context classes can be met (${values.join(' ')})`);
});

/**
 * oidc-provider's prompts, with more reasons to ask for login: the session's account is no longer
 * active, or a second factor is missing (acr_values or an essential acr claim asking for it included).
 */
export function interactionPolicyWith(needsSecondFactor: NeedsSecondFactor | undefined) {
  const policy = interactionPolicy.base();
  const login = policy.get('login')!;
  const loginChecks = login.checks;
  loginChecks.splice(loginChecks.findIndex((check) => check.reason === 'no_session') + 1, 0, accountUnavailable);
  for (const reason of ['essential_acrs', 'essential_acr']) loginChecks.remove(reason);
  loginChecks.push(essentialAcr);
  if (needsSecondFactor) {
    loginChecks.push(
      new interactionPolicy.Check('second_factor_required', 'a second factor is required', async (ctx) =>
        ctx.oidc.session?.accountId && (await storageFaultsAs503(() => needsSecondFactor(ctx)))
          ? interactionPolicy.Check.REQUEST_PROMPT
          : interactionPolicy.Check.NO_NEED_TO_PROMPT,
      ),
    );
  }
  return policy;
}
