import { randomUUID } from 'node:crypto';
import { randomToken } from '../security/crypto.ts';
import type { PrismaClient } from '../storage/db.ts';
import type { Accounts } from './accounts.ts';
import type { AuditContext, AuditLog } from './audit.ts';
import { insertCreatedEvents, insertEmails, insertPhones, insertUsers } from './import-insert.ts';
import { totpEnrolment, type TotpSealer } from './import-totp.ts';
import { namesAsTyped, validateRow, type ImportRow, type RowPolicy, type ValidRow } from './import-rows.ts';

export { importColumns, type ImportRow } from './import-rows.ts';
export { parseImportFile, streamImportFile } from './import-files.ts';

/**
 * Bulk user import from CSV, a JSON array, JSON Lines or a Keycloak realm export (see import-rows.ts
 * for the columns, README "users import" for the rules).
 *
 * A user whose email or user name already exists is left exactly as it is and reported as `exists`,
 * so running the same file twice changes nothing. A row without a password or hash gets a random one
 * nobody knows. A hashed row costs no argon2 here: the hash is kept as it is and replaced by argon2id
 * at the user's first sign-in. Rows are written in batches, each in one transaction.
 */

interface Names {
  email?: string;
  username?: string;
}

export type RowOutcome =
  | ({ line: number; status: 'created'; userId: string; notes?: string[] } & Names)
  | ({ line: number; status: 'exists'; userId: string; notes?: string[] } & Names)
  | ({ line: number; status: 'invalid'; problems: string[] } & Names);

export interface ImportReport {
  rows: RowOutcome[];
  created: number;
  existing: number;
  invalid: number;
}

export interface ImportOptions extends AuditContext, RowPolicy {
  actor: string;
  /** Record a `users.imported` summary (default true; not for a single create). */
  summary?: boolean;
  /** Seals imported authenticator-app secrets (`sealTotpSecret(box)` of the TOTP factor); a row with `totp_secret` is refused without it. */
  sealTotpSecret?: TotpSealer;
  /** Rows a transaction (default 500). */
  batchSize?: number;
  /** Called after each batch with the rows seen so far. */
  onProgress?: (seen: number) => void;
}

interface Pending {
  line: number;
  row: ValidRow;
  names: Names;
}

const namesOf = (row: ValidRow): Names => ({ ...(row.email ? { email: row.email } : {}), ...(row.username ? { username: row.username } : {}) });
const notesOf = (notes: string[]) => (notes.length > 0 ? { notes } : {});

class Importer {
  readonly outcomes: RowOutcome[] = [];
  private readonly firstLineOf = new Map<string, number>();
  // One hash of a random secret that is thrown away, shared by the rows without a password: nobody
  // can sign in with it, and the login costs the same time as for any other account.
  private unknownPasswordHash?: Promise<string>;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly accounts: Accounts,
    private readonly audit: AuditLog,
    private readonly options: ImportOptions,
  ) {}

  /** The row to write, or undefined when it was reported as invalid. */
  check(row: ImportRow): Pending | undefined {
    const checked = validateRow(row, this.options);
    if (!checked.ok) return this.invalid(row.line, namesAsTyped(row.fields), checked.problems);
    const names = namesOf(checked.row);
    if (checked.row.totp_secret && !this.options.sealTotpSecret) return this.invalid(row.line, names, ['totp_secret: cannot be sealed here']);
    const repeated = this.repeatedName(checked.row, row.line);
    return repeated ? this.invalid(row.line, names, [repeated]) : { line: row.line, row: checked.row, names };
  }

  private invalid(line: number, names: Names, problems: string[]): undefined {
    this.outcomes.push({ line, status: 'invalid', ...names, problems });
    return undefined;
  }

  /** "email: … is also on line 3" when an earlier row of the file has this row's address or name; else notes this row's. */
  private repeatedName(row: ValidRow, line: number): string | undefined {
    const keys = [...(row.email ? [['email', row.email]] : []), ...(row.username ? [['username', row.username]] : [])];
    for (const [field, value] of keys) {
      const earlier = this.firstLineOf.get(`${field}:${value}`);
      if (earlier !== undefined) return `${field}: ${value} is also on line ${earlier}`;
    }
    for (const [field, value] of keys) this.firstLineOf.set(`${field}:${value}`, line);
    return undefined;
  }

  /** Writes a batch: rows whose user exists are reported, the others created in one transaction. */
  async write(batch: Pending[]): Promise<void> {
    const existing = await this.existingUsers(batch);
    const fresh: Pending[] = [];
    for (const pending of batch) {
      const userId = existing.get(`email:${pending.row.email}`) ?? existing.get(`username:${pending.row.username}`);
      if (userId) this.outcomes.push({ line: pending.line, status: 'exists', ...pending.names, userId, ...notesOf(pending.row.notes) });
      else fresh.push(pending);
    }
    if (fresh.length === 0) return;
    try {
      await this.create(fresh);
    } catch (error) {
      // Most likely someone created one of these users meanwhile (a unique index refused the batch):
      // each row again on its own, the taken one then found as existing. Else the error stands.
      if (fresh.length > 1) {
        for (const pending of fresh) await this.write([pending]);
      } else if ((await this.existingUsers(fresh)).size > 0) {
        await this.write(fresh);
      } else {
        throw error;
      }
    }
  }

  private async existingUsers(batch: Pending[]): Promise<Map<string, string>> {
    const emails = batch.flatMap((p) => (p.row.email ? [p.row.email] : []));
    const usernames = batch.flatMap((p) => (p.row.username ? [p.row.username] : []));
    const found = await this.prisma.user.findMany({
      where: { OR: [{ email: { in: emails } }, { username: { in: usernames } }] },
      select: { id: true, email: true, username: true },
    });
    return new Map(
      found.flatMap((user) => [
        ...(user.email ? [[`email:${user.email}`, user.id]] : []),
        ...(user.username ? [[`username:${user.username}`, user.id]] : []),
      ]) as Array<[string, string]>,
    );
  }

  private passwordHash(row: ValidRow): Promise<string> {
    if (row.hash) return Promise.resolve(row.hash.stored);
    if (row.password !== undefined) return this.accounts.hashPassword(row.password);
    return (this.unknownPasswordHash ??= this.accounts.hashPassword(randomToken(32)));
  }

  private async create(batch: Pending[]): Promise<void> {
    const now = new Date();
    const users = await Promise.all(
      batch.map(async ({ row }) => ({
        id: randomUUID(),
        email: row.email ?? null,
        username: row.username ?? null,
        name: row.name || null,
        locale: row.locale ?? null,
        status: row.disabled ? ('disabled' as const) : ('active' as const),
        passwordHash: await this.passwordHash(row),
      })),
    );
    const rows = batch.map((pending, i) => ({ ...pending, user: users[i] }));
    const { sealTotpSecret: seal, actor, ip, userAgent } = this.options;
    const contact = (user: { id: string }, value: string | undefined, verified: boolean) =>
      value ? [{ userId: user.id, value, verifiedAt: verified ? now : null }] : [];
    await this.prisma.$transaction(async (tx) => {
      await insertUsers(tx, users);
      await insertEmails(
        tx,
        rows.flatMap(({ row, user }) => contact(user, row.email, row.email_verified)),
      );
      await insertPhones(
        tx,
        rows.flatMap(({ row, user }) => contact(user, row.phone, row.phone_verified)),
      );
      const apps = seal ? rows.flatMap(({ row, user }) => totpEnrolment(seal, user.id, row) ?? []) : [];
      if (apps.length > 0) await tx.factorEnrolment.createMany({ data: apps });
      await insertCreatedEvents(
        tx,
        rows.map(({ row, user }) => ({
          userId: user.id,
          ip: ip ?? null,
          userAgent: userAgent?.slice(0, 512) ?? null,
          data: {
            actor,
            import: true,
            password: row.password !== undefined || row.hash !== undefined,
            ...(row.hash ? { passwordHash: row.hash.scheme } : {}),
            ...(row.totp_secret ? { totp: true } : {}),
          },
        })),
      );
    });
    for (const { line, names, row, user } of rows) this.outcomes.push({ line, status: 'created', ...names, userId: user.id, ...notesOf(row.notes) });
  }

  async summarise(): Promise<ImportReport> {
    const count = (status: RowOutcome['status']) => this.outcomes.filter((o) => o.status === status).length;
    const report: ImportReport = {
      rows: this.outcomes.sort((a, b) => a.line - b.line),
      created: count('created'),
      existing: count('exists'),
      invalid: count('invalid'),
    };
    // Only when something changed: a second run of the same file writes nothing at all.
    if (report.created > 0 && this.options.summary !== false) {
      const { ip, userAgent, actor } = this.options;
      await this.audit.record('users.imported', {
        ip,
        userAgent,
        data: { actor, created: report.created, existing: report.existing, invalid: report.invalid },
      });
    }
    return report;
  }
}

export async function importUsers(
  prisma: PrismaClient,
  accounts: Accounts,
  audit: AuditLog,
  rows: Iterable<ImportRow> | AsyncIterable<ImportRow>,
  options: ImportOptions,
): Promise<ImportReport> {
  const importer = new Importer(prisma, accounts, audit, options);
  const size = options.batchSize ?? 500;
  let batch: Pending[] = [];
  let seen = 0;
  for await (const row of rows) {
    seen += 1;
    const pending = importer.check(row);
    if (pending) batch.push(pending);
    if (batch.length >= size) {
      await importer.write(batch);
      batch = [];
    }
    if (seen % size === 0) options.onProgress?.(seen);
  }
  if (batch.length > 0) await importer.write(batch);
  options.onProgress?.(seen);
  return importer.summarise();
}

/** `line 4: email: is not a valid email address`, one line per problem; nothing for good rows. */
export function describeProblems(report: ImportReport): string[] {
  return report.rows.flatMap((row) => (row.status === 'invalid' ? row.problems.map((problem) => `line ${row.line}: ${problem}`) : []));
}

/** `line 7 (anna): not imported: realm role admin`, one line per note (weak hashes dropped, what a source had that was not taken). */
export function describeNotes(report: ImportReport): string[] {
  return report.rows.flatMap((row) =>
    row.status !== 'invalid' && row.notes ? row.notes.map((note) => `line ${row.line} (${row.username ?? row.email}): ${note}`) : [],
  );
}
