import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { ConsentScope } from '../../accounts/consents.ts';
import type { ClientDirectory } from '../../clients/directory.ts';
import { NyckelError } from '../../errors.ts';
import { translator } from '../../i18n/i18n.ts';
import type { PageRenderer } from '../../server/pages.ts';
import { scopeClaims } from '../../provider/provider.ts';

type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

export interface ConsentDependencies {
  provider: () => Provider;
  clients: ClientDirectory;
  pages: PageRenderer;
}

/** What the consent prompt asks the user to allow (what the grant of the session lacks). */
export function askedOf(details: Details): ConsentScope {
  const missing = details.prompt.details as {
    missingOIDCScope?: string[];
    missingOIDCClaims?: string[];
    missingResourceScopes?: Record<string, string[]>;
  };
  return { scopes: missing.missingOIDCScope ?? [], claims: missing.missingOIDCClaims ?? [], resources: missing.missingResourceScopes ?? {} };
}

/** The consent prompt: the grant of what the client asks for, and the lines that tell the user what it is. */
export function consent(deps: ConsentDependencies) {
  async function grantConsent(details: Details): Promise<string> {
    const provider = deps.provider();
    const accountId = details.session?.accountId;
    if (!accountId) throw new NyckelError('session_expired');
    const grant = details.grantId ? await provider.Grant.find(details.grantId) : new provider.Grant({ accountId, clientId: String(details.params.client_id) });
    if (!grant) throw new NyckelError('session_expired');
    const asked = askedOf(details);
    if (asked.scopes.length > 0) grant.addOIDCScope(asked.scopes.join(' '));
    if (asked.claims.length > 0) grant.addOIDCClaims(asked.claims);
    for (const [indicator, scopes] of Object.entries(asked.resources)) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    return grant.save();
  }

  /** The lines of the consent page: what of the request the user has not allowed this client before. */
  function consentLines(ctx: Context, details: Details, asked: ConsentScope = askedOf(details)): string[] {
    const t = translator(deps.pages.localeOf(ctx, details.params.ui_locales as string | undefined));
    // A claim asked for by the claims parameter reads as the scope that gives it ("See your email address").
    const claimScopes = asked.claims.flatMap((claim) => Object.keys(scopeClaims).filter((scope) => scope !== 'openid' && scopeClaims[scope].includes(claim)));
    const oidc = [...new Set([...asked.scopes, ...claimScopes])].map((scope) => {
      const key = `consent.scopes.${scope}`;
      const text = t(key);
      return text === key ? scope : text;
    });
    const resources = Object.entries(asked.resources).map(([indicator, scopes]) => {
      const resource = deps.clients.file.resources.find((r) => r.identifier === indicator);
      return t('consent.resource', { resource: resource?.name ?? indicator, scopes: scopes.join(', ') });
    });
    return [...oidc, ...resources];
  }

  return { grantConsent, consentLines };
}
