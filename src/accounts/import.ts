import { parse as parseCsv, CsvError } from 'csv-parse/sync';
import YAML, { LineCounter } from 'yaml';
import { z } from 'zod';
import { NyckelError } from '../errors.ts';
import { randomToken } from '../security/crypto.ts';
import type { PrismaClient } from '../storage/db.ts';
import { emailSchema, phoneSchema, supportedLocales, usernameSchema, type Accounts } from './accounts.ts';
import type { AuditContext, AuditLog } from './audit.ts';
import { checkPassword, passwordProblemText } from './password-policy.ts';

/**
 * Bulk user import from CSV (a header row, then one user a line) or a JSON array of objects.
 *
 * Columns: `email` (the sign-in address) and `username` (the sign-in name; a row needs one of the
 * two, or both), `name`, `locale` (sv, da, en), `phone`
 * (international form), `password`, `email_verified` (default true: the operator vouches for the
 * address, as `users add` does) and `phone_verified` (default false).
 *
 * Rules: a user whose email or user name already exists is left exactly as it is and reported as `exists`, so
 * running the same file twice changes nothing. A row without a password gets a random one nobody
 * knows: that user cannot sign in with a password until an operator sets one (`users set-password`)
 * or the user resets it. Bad rows are reported by line and skipped; the good ones are imported.
 */

export const importColumns = ['email', 'username', 'name', 'locale', 'phone', 'password', 'email_verified', 'phone_verified'] as const;

export interface ImportRow {
  /** The line of the file the row starts on (1 is the first line, the CSV header). */
  line: number;
  fields: Record<string, unknown>;
}

export type RowOutcome =
  | { line: number; status: 'created'; email?: string; username?: string; userId: string }
  | { line: number; status: 'exists'; email?: string; username?: string; userId: string }
  | { line: number; status: 'invalid'; email?: string; username?: string; problems: string[] };

export interface ImportReport {
  rows: RowOutcome[];
  created: number;
  existing: number;
  invalid: number;
}

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
    email_verified: flag.default(true),
    phone_verified: flag.default(false),
  })
  .strict()
  .refine((row) => row.email !== undefined || row.username !== undefined, { message: 'email or username: a user needs one of them (or both)' });

type ValidRow = z.output<typeof rowSchema>;

/** Empty cells and nulls mean "not given". */
function dropEmpty(fields: Record<string, unknown>) {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== null && value !== undefined && value !== ''));
}

function parseCsvRows(content: string): ImportRow[] {
  let records: Array<{ record: string[]; info: { lines: number } }>;
  try {
    records = parseCsv(content, { bom: true, info: true, relax_column_count: true, skip_empty_lines: true, trim: true }) as unknown as typeof records;
  } catch (error) {
    if (error instanceof CsvError) throw new NyckelError('invalid_input', `not valid CSV: ${error.message}`);
    throw error;
  }
  if (records.length === 0) throw new NyckelError('invalid_input', 'the file is empty (expected a header row: email,name,…)');
  const header = records[0].record.map((name) => name.trim().toLowerCase());
  const unknown = header.filter((name) => !(importColumns as readonly string[]).includes(name));
  if (unknown.length > 0)
    throw new NyckelError('invalid_input', `line 1: unknown column(s) ${unknown.join(', ')}; the columns are ${importColumns.join(', ')}`);
  if (!header.includes('email') && !header.includes('username'))
    throw new NyckelError('invalid_input', 'line 1: the header row has neither an email nor a username column');
  const duplicate = header.find((name, i) => header.indexOf(name) !== i);
  if (duplicate) throw new NyckelError('invalid_input', `line 1: the column ${duplicate} appears twice`);
  return records.slice(1).map(({ record, info }) => {
    const fields: Record<string, unknown> = Object.fromEntries(header.map((name, i) => [name, record[i]]));
    // A row with too many or too few cells is reported, not guessed at.
    if (record.length !== header.length) fields[' cells'] = `has ${record.length} cells, the header has ${header.length}`;
    // `lines` is the line the record ends on; a quoted cell may span lines, so count back.
    const spanned = record.reduce((sum, cell) => sum + (cell.match(/\n/g)?.length ?? 0), 0);
    return { line: info.lines - spanned, fields };
  });
}

function parseJsonRows(content: string): ImportRow[] {
  let value: unknown;
  try {
    value = JSON.parse(content);
  } catch (error) {
    throw new NyckelError('invalid_input', `not valid JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(value)) throw new NyckelError('invalid_input', 'the JSON file must be an array of objects, one per user');
  // JSON is YAML: its parser knows where each element starts.
  const lineCounter = new LineCounter();
  const document = YAML.parseDocument(content, { lineCounter });
  const items = YAML.isSeq(document.contents) ? document.contents.items : [];
  return value.map((fields, index) => {
    const node = items[index] as { range?: [number, number, number] } | undefined;
    const line = node?.range ? lineCounter.linePos(node.range[0]).line : index + 1;
    return {
      line,
      fields: fields && typeof fields === 'object' && !Array.isArray(fields) ? (fields as Record<string, unknown>) : { ' object': 'is not an object' },
    };
  });
}

/** Rows of a CSV or JSON file; `json` when the name says so or the content starts with `[`. */
export function parseImportFile(content: string, fileName = ''): ImportRow[] {
  const json = fileName.toLowerCase().endsWith('.json') || content.trimStart().startsWith('[');
  return json ? parseJsonRows(content) : parseCsvRows(content);
}

function describeIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') return `unknown field(s) ${issue.keys.join(', ')}; the fields are ${importColumns.join(', ')}`;
    return issue.path.length > 0 ? `${issue.path.join('.')}: ${issue.message}` : issue.message;
  });
}

function validate(row: ImportRow): { ok: true; row: ValidRow } | { ok: false; problems: string[] } {
  const { ' cells': cells, ' object': notObject, ...fields } = row.fields;
  if (notObject) return { ok: false, problems: [`the element ${typeof notObject === 'string' ? notObject : 'is not an object'}`] };
  const parsed = rowSchema.safeParse(dropEmpty(fields));
  // The password policy is checked apart from the schema, so it is reported along with the other problems.
  const password =
    typeof fields.password === 'string' && fields.password !== ''
      ? checkPassword(fields.password, {
          email: typeof fields.email === 'string' ? fields.email.trim() : undefined,
          username: typeof fields.username === 'string' ? fields.username.trim() : undefined,
        })
      : undefined;
  const problems = [
    ...(cells ? [`the row ${typeof cells === 'string' ? cells : 'has the wrong number of cells'}`] : []),
    ...(parsed.success ? [] : describeIssues(parsed.error)),
    ...(password ? [`password: ${passwordProblemText[password]}`] : []),
  ];
  return problems.length === 0 && parsed.success ? { ok: true, row: parsed.data } : { ok: false, problems };
}

function namesAsTyped(fields: Record<string, unknown>): { email?: string; username?: string } {
  const typed = (value: unknown) => (typeof value === 'string' && value.trim() ? value.trim() : undefined);
  const [email, username] = [typed(fields.email), typed(fields.username)];
  return { ...(email ? { email } : {}), ...(username ? { username } : {}) };
}

/** "email: … is also on line 3" when an earlier row of the file has this row's address or name; else notes this row's. */
function repeatedName(firstLineOf: Map<string, number>, row: ValidRow, line: number): string | undefined {
  const keys = [...(row.email ? [['email', row.email]] : []), ...(row.username ? [['username', row.username]] : [])];
  for (const [field, value] of keys) {
    const earlier = firstLineOf.get(`${field}:${value}`);
    if (earlier !== undefined) return `${field}: ${value} is also on line ${earlier}`;
  }
  for (const [field, value] of keys) firstLineOf.set(`${field}:${value}`, line);
  return undefined;
}

function existingUser(prisma: PrismaClient, row: ValidRow) {
  const names = [...(row.email ? [{ email: row.email }] : []), ...(row.username ? [{ username: row.username }] : [])];
  return prisma.user.findFirst({ where: { OR: names }, select: { id: true } });
}

const isUniqueViolation = (error: unknown) => (error as { code?: string }).code === 'P2002';

export async function importUsers(
  prisma: PrismaClient,
  accounts: Accounts,
  audit: AuditLog,
  rows: ImportRow[],
  context: AuditContext & { actor: string; /** Record a `users.imported` summary (default true; not for a single create). */ summary?: boolean },
): Promise<ImportReport> {
  const outcomes: RowOutcome[] = [];
  const firstLineOf = new Map<string, number>();
  // One hash of a random secret that is thrown away, shared by the rows without a password: nobody
  // can sign in with it, and the login costs the same time as for any other account.
  let unknownPasswordHash: Promise<string> | undefined;
  for (const row of rows) {
    const checked = validate(row);
    if (!checked.ok) {
      outcomes.push({ line: row.line, status: 'invalid', ...namesAsTyped(row.fields), problems: checked.problems });
      continue;
    }
    const data = checked.row;
    const names = { ...(data.email ? { email: data.email } : {}), ...(data.username ? { username: data.username } : {}) };
    const repeated = repeatedName(firstLineOf, data, row.line);
    if (repeated) {
      outcomes.push({ line: row.line, status: 'invalid', ...names, problems: [repeated] });
      continue;
    }
    const existing = await existingUser(prisma, data);
    if (existing) {
      outcomes.push({ line: row.line, status: 'exists', ...names, userId: existing.id });
      continue;
    }
    const passwordHash =
      data.password !== undefined ? await accounts.hashPassword(data.password) : await (unknownPasswordHash ??= accounts.hashPassword(randomToken(32)));
    try {
      const user = await prisma.$transaction(async (tx) => {
        const created = await tx.user.create({
          data: {
            email: data.email ?? null,
            username: data.username ?? null,
            name: data.name || null,
            locale: data.locale ?? null,
            passwordHash,
            ...(data.email ? { emails: { create: [{ address: data.email, verifiedAt: data.email_verified ? new Date() : null }] } } : {}),
            ...(data.phone ? { phones: { create: [{ e164: data.phone, verifiedAt: data.phone_verified ? new Date() : null }] } } : {}),
          },
        });
        await audit.within(tx).record('user.created', {
          userId: created.id,
          ip: context.ip,
          userAgent: context.userAgent,
          data: { actor: context.actor, import: true, password: data.password !== undefined },
        });
        return created;
      });
      outcomes.push({ line: row.line, status: 'created', ...names, userId: user.id });
    } catch (error) {
      // Created meanwhile by someone else: the same as finding it.
      if (!isUniqueViolation(error)) throw error;
      const winner = await existingUser(prisma, data);
      if (!winner) throw error;
      outcomes.push({ line: row.line, status: 'exists', ...names, userId: winner.id });
    }
  }
  const report: ImportReport = {
    rows: outcomes,
    created: outcomes.filter((o) => o.status === 'created').length,
    existing: outcomes.filter((o) => o.status === 'exists').length,
    invalid: outcomes.filter((o) => o.status === 'invalid').length,
  };
  // Only when something changed: a second run of the same file writes nothing at all.
  if (report.created > 0 && context.summary !== false) {
    await audit.record('users.imported', {
      ip: context.ip,
      userAgent: context.userAgent,
      data: { actor: context.actor, created: report.created, existing: report.existing, invalid: report.invalid },
    });
  }
  return report;
}

/** `line 4: email: is not a valid email address`, one line per problem; nothing for good rows. */
export function describeProblems(report: ImportReport): string[] {
  return report.rows.flatMap((row) => (row.status === 'invalid' ? row.problems.map((problem) => `line ${row.line}: ${problem}`) : []));
}
