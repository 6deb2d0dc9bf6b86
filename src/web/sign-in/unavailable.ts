import type { Context } from 'koa';
import { supportLine } from '../../branding/mail-branding.ts';
import { translator } from '../../i18n/i18n.ts';
import type { Locale } from '../../i18n/locales.ts';
import type { PageRenderer } from '../../server/pages.ts';

/**
 * The end of the road, when the client needs a second factor and the user has nothing at all to
 * prove it is them with (every other case leads to a proof and an enrolment): it says so, and names
 * who can help: the client's `support_contact` where it has one, else the installation's.
 */
export function renderUnavailable(
  deps: { pages: PageRenderer },
  ctx: Context,
  frame: { locale: Locale; clientName: string; uid: string; csrfToken: string },
  clientId: string,
) {
  const t = translator(frame.locale);
  const support = deps.pages.branding.supportFor(clientId);
  const contact = support ? supportLine(support) : t('mfa.unavailable_contact');
  const message = t('mfa.unavailable', { client: frame.clientName, contact });
  deps.pages.html(ctx, 'message', frame.locale, { ...frame, clientId, title: t('mfa.unavailable_title'), message, cancel: true, showSupport: true }, 403);
}
