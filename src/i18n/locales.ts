/** The languages of the hosted pages, mails and SMS texts; NYCKEL_DEFAULT_LOCALE picks one when the browser asks for none of them. */
export const supportedLocales = ['sv', 'da', 'en'] as const;
export type Locale = (typeof supportedLocales)[number];
