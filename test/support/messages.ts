import { catalogue as catalogueOf } from '../../src/i18n/i18n.ts';

/** A locale's message catalogue as the pages use it: `msg('login.submit')`, with {{name}} filled in (and the default service name). */
export function messages(locale: 'sv' | 'da' | 'en') {
  // The pages' catalogue: interactions/locales with every factor's strings merged in.
  const catalogue = catalogueOf(locale) as Record<string, unknown>;
  return function msg(key: string, vars: Record<string, string | number> = {}): string {
    const text = key.split('.').reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], catalogue);
    if (typeof text !== 'string') throw new Error(`no message ${key}`);
    // The pages fill in the service's name (NYCKEL_BRAND_NAME, "Nyckel" unless set).
    const values: Record<string, string | number> = { service: 'Nyckel', ...vars };
    return text.replace(/\{\{(\w+)\}\}/g, (_m, name: string) => String(values[name]));
  };
}
