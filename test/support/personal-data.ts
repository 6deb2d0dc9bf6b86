import type { PrismaClient } from '../../src/storage/db.ts';
import { dumpUnder } from './redis.ts';

/**
 * Every row of every table of the schema (and every Redis key and value under `redisPrefix`) that
 * names one of `names` as text, case-insensitively: what an erasure must leave none of.
 */
export async function rowsNaming(prisma: PrismaClient, names: string[], redisPrefix?: string): Promise<string[]> {
  const needles = names.map((name) => name.toLowerCase());
  const tables = await prisma.$queryRaw<Array<{ table_name: string }>>`
    SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`;
  // A scan of the wrong schema would find nothing, and prove nothing.
  if (!tables.some((table) => table.table_name === 'audit_events')) throw new Error(`no Nyckel tables in the schema: ${JSON.stringify(tables)}`);
  const hits: string[] = [];
  for (const { table_name: table } of tables) {
    const rows = await prisma.$queryRawUnsafe<Array<{ row: string }>>(`SELECT row_to_json(t)::text AS row FROM "${table.replaceAll('"', '""')}" t`);
    for (const { row } of rows) if (needles.some((needle) => row.toLowerCase().includes(needle))) hits.push(`${table}: ${row.slice(0, 300)}`);
  }
  if (redisPrefix) {
    const dump = (await dumpUnder(redisPrefix)).toLowerCase();
    for (const needle of needles) if (dump.includes(needle)) hits.push(`redis: ${needle}`);
  }
  return hits;
}

/** Which of the named secrets occur in `text` (expected: none). */
export function secretsIn(text: string, secrets: Record<string, string | undefined>): string[] {
  return Object.entries(secrets)
    .filter(([, secret]) => secret !== undefined && secret.length >= 6 && text.includes(secret))
    .map(([name]) => name);
}
