import { createRequire } from 'node:module';
import type * as LanguageCommon from '@zxcvbn-ts/language-common';

/**
 * NIST SP 800-63B §3.1.1.2: length is what counts. At least 8 characters (15 recommended), up to 256,
 * any Unicode (normalised to NFKC so that the same password typed on two keyboards matches), spaces
 * and paste allowed, no composition rules, and no password from a list of commonly used ones.
 */
export const passwordRules = { minLength: 8, recommendedLength: 15, maxLength: 256 } as const;

const require = createRequire(import.meta.url);
let commonPasswordList: Set<string> | undefined;

/**
 * zxcvbn's list of common passwords, read and decompressed at the first password check rather than at
 * start (sign-ins never check one): a few MiB of strings a node that only signs users in never holds.
 */
function commonPasswords(): Set<string> {
  if (commonPasswordList) return commonPasswordList;
  const { dictionary } = require('@zxcvbn-ts/language-common') as typeof LanguageCommon;
  commonPasswordList = new Set(dictionary['passwords-common'].filter((p) => p.length >= passwordRules.minLength));
  return commonPasswordList;
}

export type PasswordProblem = 'too_short' | 'too_long' | 'common' | 'contains_email';

export function normalisePassword(password: string): string {
  return password.normalize('NFKC');
}

/** Counts user-perceived characters, so that "å" written as a + ring counts once. */
function length(password: string): number {
  return [...new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(password)].length;
}

export function checkPassword(password: string, context: { email?: string; username?: string } = {}): PasswordProblem | undefined {
  const normalised = normalisePassword(password);
  const chars = length(normalised);
  if (chars < passwordRules.minLength) return 'too_short';
  if (chars > passwordRules.maxLength) return 'too_long';
  const lower = normalised.toLowerCase();
  if (commonPasswords().has(lower) || /^(.)\1+$/u.test(lower)) return 'common';
  if (context.email) {
    const email = context.email.toLowerCase();
    const local = email.split('@')[0] ?? '';
    if (lower === email || (local.length >= 4 && lower === local)) return 'contains_email';
  }
  if (context.username && lower === context.username.normalize('NFKC').toLowerCase()) return 'contains_email';
  return undefined;
}

export const passwordProblemText: Record<PasswordProblem, string> = {
  too_short: `must be at least ${passwordRules.minLength} characters (${passwordRules.recommendedLength} or more is better)`,
  too_long: `must be at most ${passwordRules.maxLength} characters`,
  common: 'is one of the most commonly used passwords; choose another',
  contains_email: 'must not be the email address or the user name',
};
