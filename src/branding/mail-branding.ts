import nunjucks from 'nunjucks';
import type { MailToEnqueue } from '../delivery/dispatcher.ts';
import { translator } from '../i18n/i18n.ts';
import type { Locale } from '../i18n/locales.ts';
import type { Branding, SupportContact } from './brand.ts';

/** A mail as its writer hands it over: in the reader's language, and for a client where there is one. */
export interface UnsignedMail extends Omit<MailToEnqueue, 'fromName'> {
  locale: Locale;
  /** The client the mail is about (its sender name and support contact); absent: the installation's. */
  clientId?: string;
}

/** The support contact on one line: "IT-support, 08-123 45 67 · help@example.se · https://example.se/help". */
export function supportLine(support: SupportContact): string {
  return [support.text, support.email, support.url].filter(Boolean).join(' · ');
}

// nunjucks' own autoescape (lib.escape), which its type declarations leave out.
const escape = (text: string): string => (nunjucks.lib as unknown as { escape(text: string): string }).escape(text);

/**
 * Signs a mail: who sent it (the service's name, and the From name of the client or the service) and
 * how to reach support, the same in every mail Nyckel sends.
 */
/** What signing a mail needs of the brand. */
export type MailBrand = Pick<Branding, 'name' | 'senderName' | 'supportFor'>;

export function signMail(branding: MailBrand, mail: UnsignedMail): MailToEnqueue {
  const { locale, clientId, ...rest } = mail;
  const t = translator(locale);
  const support = branding.supportFor(clientId);
  const signature = t('mail.signature', { service: branding.name });
  const supportText = support ? t('mail.support', { contact: supportLine(support) }) : undefined;
  const text = [mail.text.trimEnd(), '', signature, ...(supportText ? [supportText] : [])].join('\n');
  let html = mail.html;
  if (html !== undefined) {
    const links = support
      ? [
          support.text ? escape(support.text) : undefined,
          support.email ? `<a href="mailto:${escape(support.email)}">${escape(support.email)}</a>` : undefined,
          support.url ? `<a href="${escape(support.url)}">${escape(support.url)}</a>` : undefined,
        ].filter(Boolean)
      : [];
    const contact = `<span class="support">${links.join(' · ')}</span>`;
    const footer = [
      `<p>${escape(signature)}</p>`,
      ...(support ? [`<p>${escape(t('mail.support', { contact: '\u0000' })).replace('\u0000', contact)}</p>`] : []),
    ].join('\n  ');
    html = html.includes('</body>') ? html.replace('</body>', `  ${footer}\n</body>`) : `${html}\n${footer}`;
  }
  const fromName = branding.senderName(clientId);
  return { ...rest, text, ...(html !== undefined ? { html } : {}), ...(fromName ? { fromName } : {}) };
}
