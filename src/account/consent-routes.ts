import type Router from '@koa/router';
import type { Middleware } from 'koa';
import type { Translate } from '../i18n/i18n.ts';
import type { Locale } from '../i18n/locales.ts';
import { NyckelError } from '../errors.ts';
import { assertCsrf } from '../security/csrf.ts';
import { readForm } from '../web/shared/forms.ts';
import { plainForm, type AccountKit, type AccountRouteDependencies } from './account-kit.ts';

/** The overview's list of relying parties the user has allowed something, with what and since when. */
export async function consentRows(
  deps: Pick<AccountRouteDependencies, 'consents' | 'clients'>,
  kit: Pick<AccountKit, 'dateText'>,
  userId: string,
  t: Translate,
  locale: Locale,
) {
  const scopeText = (scope: string) => {
    const text = t(`consent.scopes.${scope}`);
    return text === `consent.scopes.${scope}` ? scope : text;
  };
  return (await deps.consents.list(userId)).map((row) => ({
    clientId: row.clientId,
    name: deps.clients.get(row.clientId)?.name ?? row.clientId,
    scopes: row.scopes.map(scopeText),
    granted: kit.dateText(locale, row.grantedAt),
  }));
}

/** "Revoke" next to a relying party: the consent is forgotten and what the party holds is revoked. */
export function registerConsentRoutes(router: Router, deps: AccountRouteDependencies, kit: AccountKit, form: Middleware): void {
  router.post('/account/consents/:clientId/revoke', form, async (ctx) => {
    const input = readForm(ctx, plainForm);
    assertCsrf(ctx, input._csrf);
    const v = await kit.visit(ctx, { change: true });
    if (!v) return;
    const clientId = ctx.params.clientId;
    if (!(await deps.consents.revoke(v.user.id, clientId, { ...kit.auditContext(ctx) }))) throw new NyckelError('not_found');
    await deps.notifier.notify(v.user, v.locale, 'consent_revoked', { client: deps.clients.get(clientId)?.name ?? clientId });
    ctx.status = 303;
    ctx.redirect('/account?done=consent_revoked');
  });
}
