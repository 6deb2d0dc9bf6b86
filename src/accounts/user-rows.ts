import { z } from 'zod';
import type { User } from '../generated/prisma/client.ts';
import type { SqlDriver } from '../storage/sql.ts';

/** Every column of `users`, named as Prisma's User type names them (test/storage/user-rows.test.ts holds the two together). */
const USER_COLUMNS = `id, email, username, name, password_hash AS "passwordHash", status::text AS status, locale, method_order AS "methodOrder",
  password_changed_at AS "passwordChangedAt", deletion_due_at AS "deletionDueAt", created_at AS "createdAt", updated_at AS "updatedAt"`;

const isUuid = (value: string) => z.uuid().safeParse(value).success;

/**
 * The user of one unique column, read through the driver: every sign-in step and token reads its
 * user, and a Prisma model call costs three times the driver's CPU. An id that is no uuid is no user's.
 */
export async function userWhere(sql: SqlDriver, column: 'id' | 'email' | 'username', value: string): Promise<User | null> {
  if (column === 'id' && !isUuid(value)) return null;
  const { rows } = await sql.query<User>(`SELECT ${USER_COLUMNS} FROM users WHERE ${column} = $1`, [value]);
  return rows[0] ?? null;
}
