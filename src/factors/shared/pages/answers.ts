import { z } from 'zod';
import { NyckelError } from '../../../errors.ts';
import type { Answer } from '../../ui-contract.ts';

const codeForm = z.object({ code: z.string().max(64).default('') });
/** A passkey's answer: the JSON the page's script wrote (the module checks its shape). */
const credentialForm = z.object({ credential: z.string().max(32_768).default('') });

function parse<T extends z.ZodType>(schema: T, form: unknown): z.output<T> {
  const parsed = schema.safeParse(form ?? {});
  if (!parsed.success) throw new NyckelError('invalid_request', parsed.error.issues.map((i) => i.path.join('.')).join(', '));
  return parsed.data;
}

/** Digits (4 to 10), or for a printed list letters, digits and a dash; spaces as typed are dropped. */
export function readCode(form: unknown, options: { alphanumeric: boolean; enrolling: boolean }): Answer {
  const code = parse(codeForm, form).code.replace(/\s+/g, '');
  // At enrolment the module judges the code itself.
  if (options.enrolling) return { code };
  if (!(options.alphanumeric ? /^[0-9A-Za-z-]{4,20}$/ : /^\d{4,10}$/).test(code)) return { invalid: 'factor_errors.format' };
  return { code };
}

/** The posted WebAuthn credential as parsed JSON; invalid when missing or not JSON (no script, or garbage). */
export function readCredential(form: unknown): Answer {
  const { credential } = parse(credentialForm, form);
  if (!credential) return { invalid: 'factor_errors.passkey_format' };
  try {
    return { credential: JSON.parse(credential) as unknown };
  } catch {
    return { invalid: 'factor_errors.passkey_format' };
  }
}
