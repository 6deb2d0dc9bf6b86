import pino from 'pino';
import { openMigratedDatabase } from '../../src/nyckel.ts';
import type { Database, PrismaClient } from '../../src/storage/db.ts';
import { freshDatabase } from '../support/database.ts';

/** A migrated database of the suite's kind, and a way to drop it. */
export async function openTestDatabase(): Promise<{ db: Database; close(): Promise<void> }> {
  const fresh = await freshDatabase();
  const db = await openMigratedDatabase(fresh.target);
  return {
    db,
    close: async () => {
      await db.close();
      await fresh.drop();
    },
  };
}

/** A pino logger whose lines are kept, to check what is (and is not) logged. */
export function captureLogger(): { logger: pino.Logger; lines: string[]; entries(): Array<Record<string, unknown>> } {
  const lines: string[] = [];
  const logger = pino({ level: 'trace' }, { write: (line: string) => void lines.push(line) });
  return { logger, lines, entries: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

/** The test's clock: makes a queued row due now, as if its retry delay had passed. */
export async function makeDue(prisma: PrismaClient, id: string): Promise<void> {
  await prisma.delivery.update({ where: { id }, data: { nextAttempt: new Date(Date.now() - 1000) } });
}

export async function waitFor<T>(probe: () => Promise<T | undefined | false>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
