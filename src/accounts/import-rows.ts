import { z } from 'zod';
import { emailSchema, phoneSchema, supportedLocales, usernameSchema } from './accounts.ts';
import { totpFields, totpProblems } from './import-totp.ts';
import { keycloakCredential, readPasswordHash, HashFormatError, type ImportedHash } from './password-hashes/registry.ts';
import { checkPassword, passwordProblemText } from './password-policy.ts';

/** One row of an import: its fields as read, and what a converter (Keycloak) adds. */
export interface ImportRow {
  /** The line of the file the row starts on (1 is the first line, the CSV header). */
  line: number;
  fields: Record<string, unknown>;
  /** What the source had that is not imported (Keycloak roles, groups, …), listed in the report. */
  notTaken?: string[];
  /** Disabled in the source: imported disabled. */
  disabled?: boolean;
}

export const importColumns = [
  'email',
  'username',
  'name',
  'locale',
  'phone',
  'password',
  'password_hash',
  'email_verified',
  'phone_verified',
  'totp_secret',
  'totp_digits',
  'totp_period',
  'totp_algorithm',
] as const;

const booleanText = new Map([
  ['true', true],
  ['yes', true],
  ['1', true],
  ['false', false],
  ['no', false],
  ['0', false],
]);
const flag = z.union(
  [
    z.boolean(),
    z.string().transform((value, ctx) => {
      const parsed = booleanText.get(value.trim().toLowerCase());
      if (parsed === undefined) {
        ctx.addIssue({ code: 'custom', message: 'must be true or false' });
        return z.NEVER;
      }
      return parsed;
    }),
  ],
  { error: 'must be true or false' },
);

const text = (what: string) => z.string({ error: (issue) => (issue.input === undefined ? 'is required' : `must be ${what}`) });

const rowSchema = z
  .object({
    email: text('an email address').pipe(emailSchema).optional(),
    username: text('a user name').pipe(usernameSchema).optional(),
    name: text('text')
      .trim()
      .max(200, 'is longer than 200 characters')
      .regex(/^\P{Cc}*$/u, 'must not contain line breaks or other control characters')
      .optional(),
    locale: z.enum(supportedLocales, { error: `must be one of ${supportedLocales.join(', ')}` }).optional(),
    phone: text('a phone number').pipe(phoneSchema).optional(),
    password: text('text').optional(),
    // Read apart (readHash): a string, or a Keycloak credential object in JSON.
    password_hash: z.unknown().optional(),
    email_verified: flag.default(true),
    phone_verified: flag.default(false),
    ...totpFields,
  })
  .strict()
  .refine((row) => row.email !== undefined || row.username !== undefined, { message: 'email or username: a user needs one of them (or both)' });

export type ValidRow = Omit<z.output<typeof rowSchema>, 'password_hash'> & {
  /** The imported hash to keep; undefined with `password` or with neither (a random password nobody knows). */
  hash?: ImportedHash;
  /** Said in the report: a weak hash dropped, what the source had that was not taken. */
  notes: string[];
  disabled: boolean;
};

export interface RowPolicy {
  /** Import users whose hash is weak (below the floors), without the hash: they set a new password. */
  allowWeakHashes?: boolean;
}

/** Empty cells and nulls mean "not given". */
function dropEmpty(fields: Record<string, unknown>) {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== null && value !== undefined && value !== ''));
}

function describeIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') return `unknown field(s) ${issue.keys.join(', ')}; the fields are ${importColumns.join(', ')}`;
    return issue.path.length > 0 ? `${issue.path.join('.')}: ${issue.message}` : issue.message;
  });
}

function readHash(value: unknown): ImportedHash {
  if (typeof value === 'string') return readPasswordHash(value);
  if (value && typeof value === 'object' && !Array.isArray(value)) return keycloakCredential(value);
  throw new HashFormatError('must be a hash string or a Keycloak credential object');
}

/** The password problems: both kinds given, an unreadable hash, a weak one (unless allowed), a plaintext against the policy. */
function passwordProblems(fields: Record<string, unknown>, policy: RowPolicy): { problems: string[]; hash?: ImportedHash; notes: string[] } {
  const [password, hashed] = [fields.password, fields.password_hash];
  const given = (value: unknown) => value !== undefined && value !== null && value !== '';
  if (given(password) && given(hashed)) return { problems: ['password and password_hash: give one of them, not both'], notes: [] };
  if (given(hashed)) {
    let hash: ImportedHash;
    try {
      hash = readHash(hashed);
    } catch (error) {
      if (error instanceof HashFormatError) return { problems: [`password_hash: cannot be read: ${error.message}`], notes: [] };
      throw error;
    }
    if (!hash.weakness) return { problems: [], hash, notes: [] };
    if (!policy.allowWeakHashes) return { problems: [`password_hash: weak (${hash.weakness}); refused unless --allow-weak-hashes`], notes: [] };
    return { problems: [], notes: [`password_hash: weak (${hash.weakness}), not kept: the user sets a new password`] };
  }
  if (typeof password !== 'string' || password === '') return { problems: [], notes: [] };
  const names = {
    email: typeof fields.email === 'string' ? fields.email.trim() : undefined,
    username: typeof fields.username === 'string' ? fields.username.trim() : undefined,
  };
  const problem = checkPassword(password, names);
  return { problems: problem ? [`password: ${passwordProblemText[problem]}`] : [], notes: [] };
}

export function validateRow(row: ImportRow, policy: RowPolicy): { ok: true; row: ValidRow } | { ok: false; problems: string[] } {
  const { ' cells': cells, ' object': notObject, ...fields } = row.fields;
  if (notObject) return { ok: false, problems: [`the element ${typeof notObject === 'string' ? notObject : 'is not an object'}`] };
  // Cells out of step with the header: what each field holds is a guess, so that is the one problem.
  if (cells) return { ok: false, problems: [`the row ${typeof cells === 'string' ? cells : 'has the wrong number of cells'}`] };
  const parsed = rowSchema.safeParse(dropEmpty(fields));
  // The password is checked apart from the schema, so it is reported along with the other problems.
  const password = passwordProblems(fields, policy);
  const problems = [...(parsed.success ? totpProblems(parsed.data) : describeIssues(parsed.error)), ...password.problems];
  if (problems.length > 0 || !parsed.success) return { ok: false, problems };
  const { password_hash: _given, ...data } = parsed.data;
  return { ok: true, row: { ...data, hash: password.hash, notes: [...password.notes, ...(row.notTaken ?? [])], disabled: row.disabled === true } };
}

export function namesAsTyped(fields: Record<string, unknown>): { email?: string; username?: string } {
  const typed = (value: unknown) => (typeof value === 'string' && value.trim() ? value.trim() : undefined);
  const [email, username] = [typed(fields.email), typed(fields.username)];
  return { ...(email ? { email } : {}), ...(username ? { username } : {}) };
}
