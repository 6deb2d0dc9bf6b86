import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { ClientDirectory } from '../../clients/directory.ts';
import { NyckelError } from '../../errors.ts';
import { translator } from '../../i18n/i18n.ts';
import type { PageRenderer } from '../../server/pages.ts';

type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

export interface ConsentDependencies {
  provider: () => Provider;
  clients: ClientDirectory;
  pages: PageRenderer;
}

/** The consent prompt: the grant of what the client asks for, and the lines that tell the user what it is. */
export function consent(deps: ConsentDependencies) {
  async function grantConsent(details: Details): Promise<string> {
    const provider = deps.provider();
    const accountId = details.session?.accountId;
    if (!accountId) throw new NyckelError('session_expired');
    const grant = details.grantId ? await provider.Grant.find(details.grantId) : new provider.Grant({ accountId, clientId: String(details.params.client_id) });
    if (!grant) throw new NyckelError('session_expired');
    const missing = details.prompt.details as {
      missingOIDCScope?: string[];
      missingOIDCClaims?: string[];
      missingResourceScopes?: Record<string, string[]>;
    };
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    return grant.save();
  }

  function consentLines(ctx: Context, details: Details): string[] {
    const t = translator(deps.pages.localeOf(ctx, details.params.ui_locales as string | undefined));
    const missing = details.prompt.details as { missingOIDCScope?: string[]; missingResourceScopes?: Record<string, string[]> };
    const oidc = (missing.missingOIDCScope ?? []).map((scope) => {
      const key = `consent.scopes.${scope}`;
      const text = t(key);
      return text === key ? scope : text;
    });
    const resources = Object.entries(missing.missingResourceScopes ?? {}).map(([indicator, scopes]) => {
      const resource = deps.clients.file.resources.find((r) => r.identifier === indicator);
      return t('consent.resource', { resource: resource?.name ?? indicator, scopes: scopes.join(', ') });
    });
    return [...oidc, ...resources];
  }

  return { grantConsent, consentLines };
}
