import { z } from 'zod';
import type { User } from '../generated/prisma/client.ts';
import type { SqlDriver } from '../storage/sql.ts';

/** Every column of `users`, named as Prisma's User type names them (test/storage/user-rows.test.ts holds the two together). */
const USER_FIELDS: ReadonlyArray<readonly [field: keyof User, column: string]> = [
  ['id', 'id'],
  ['email', 'email'],
  ['username', 'username'],
  ['name', 'name'],
  ['passwordHash', 'password_hash'],
  ['status', 'status::text'],
  ['locale', 'locale'],
  ['methodOrder', 'method_order'],
  ['passwordChangedAt', 'password_changed_at'],
  ['deletionDueAt', 'deletion_due_at'],
  ['createdAt', 'created_at'],
  ['updatedAt', 'updated_at'],
];
const USER_COLUMNS = USER_FIELDS.map(([field, column]) => `${column} AS "${field}"`).join(', ');
const FIELD_NAMES = new Set<string>(USER_FIELDS.map(([field]) => field));

const uuid = z.uuid();
const isUuid = (value: string) => uuid.safeParse(value).success;

/**
 * `SELECT … FROM <table>` with the table's row and its user (`user_id`) in one statement: the user's
 * columns come from a lateral subquery (`users` is the nearer scope there, so its `id` and `created_at`
 * are meant), and `splitUser` takes them apart again.
 */
export function withUserSql(columns: string, table: string, where: string): string {
  return `SELECT ${columns}, u.* FROM ${table} t LEFT JOIN LATERAL (SELECT ${USER_COLUMNS} FROM users WHERE users.id = t.user_id) u ON true WHERE ${where}`;
}

/** The user of a `withUserSql` row (null when there is none), and the rest of the row. */
export function splitUser<Row extends object>(row: Row & Partial<User>): { rest: Row; user: User | null } {
  const rest: Record<string, unknown> = {};
  const user: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(row)) (FIELD_NAMES.has(key) ? user : rest)[key] = value;
  return { rest: rest as Row, user: user.id ? (user as unknown as User) : null };
}

/**
 * The user of one unique column, read through the driver: every sign-in step and token reads its
 * user, and a Prisma model call costs three times the driver's CPU. An id that is no uuid is no user's.
 */
export async function userWhere(sql: SqlDriver, column: 'id' | 'email' | 'username', value: string): Promise<User | null> {
  if (column === 'id' && !isUuid(value)) return null;
  const { rows } = await sql.query<User>(`SELECT ${USER_COLUMNS} FROM users WHERE ${column} = $1`, [value]);
  return rows[0] ?? null;
}

/** What a user's OpenID claims need beside the user's own columns: the sign-in address's verification and the first phone number. */
export interface UserContact {
  emailVerified: boolean;
  e164: string | null;
  phoneVerified: boolean;
}

const CONTACT_COLUMNS = `EXISTS (SELECT 1 FROM user_emails e WHERE e.user_id = users.id AND e.address = users.email AND e.verified_at IS NOT NULL) AS "emailVerified",
  phone.e164, phone.verified_at IS NOT NULL AS "phoneVerified"`;
const FIRST_PHONE = `LEFT JOIN LATERAL (SELECT e164, verified_at FROM user_phones WHERE user_id = users.id ORDER BY created_at LIMIT 1) AS phone ON true`;

/** The contact details of a user's claims. */
export async function contactOf(sql: SqlDriver, userId: string): Promise<UserContact> {
  const { rows } = await sql.query<UserContact>(`SELECT ${CONTACT_COLUMNS} FROM users ${FIRST_PHONE} WHERE users.id = $1::uuid`, [userId]);
  return rows[0] ?? { emailVerified: false, e164: null, phoneVerified: false };
}

/** The user of an id and the contact details of its claims in one statement (a token request needs both). */
export async function userWithContact(sql: SqlDriver, id: string): Promise<{ user: User; contact: UserContact } | null> {
  if (!isUuid(id)) return null;
  const { rows } = await sql.query<User & UserContact>(`SELECT ${USER_COLUMNS}, ${CONTACT_COLUMNS} FROM users ${FIRST_PHONE} WHERE users.id = $1::uuid`, [id]);
  if (!rows[0]) return null;
  const { emailVerified, e164, phoneVerified, ...user } = rows[0];
  return { user, contact: { emailVerified, e164, phoneVerified } };
}
