import { afterAll, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import pino from 'pino';
import { enqueueMail, MailDispatcher } from '../../src/delivery/dispatcher.ts';
import { openDeliveryBody } from '../../src/delivery/sealed-body.ts';
import type { MailMessage, MailTransport } from '../../src/delivery/transport.ts';
import { openMigratedDatabase } from '../../src/nyckel.ts';
import type { Database } from '../../src/storage/db.ts';
import { freshDatabase } from '../support/database.ts';
import { testBox } from '../support/mail.ts';

const box = testBox();

/**
 * Two dispatchers on one database, as two Nyckel nodes sharing PostgreSQL: on the PostgreSQL server
 * each has its own Prisma client (its own connection pool); PGlite is one process, so they share it.
 */
let fresh: Awaited<ReturnType<typeof freshDatabase>>;
let nodeA: Database;
let nodeB: Database;

beforeAll(async () => {
  fresh = await freshDatabase();
  nodeA = await openMigratedDatabase(fresh.target);
  nodeB = fresh.target.kind === 'postgres' ? await openMigratedDatabase(fresh.target) : nodeA;
});
afterAll(async () => {
  if (nodeB !== nodeA) await nodeB.close();
  await nodeA.close();
  await fresh.drop();
});
beforeEach(async () => {
  await nodeA.prisma.delivery.deleteMany();
});

/** Counts sends per subject; each send takes a few milliseconds, so the two dispatchers overlap. */
function countingTransport(sends: Map<string, number>, perNode: { count: number }): MailTransport {
  return {
    name: 'smtp',
    send: async (message: MailMessage) => {
      await new Promise((resolve) => setTimeout(resolve, 1 + Math.floor(Math.random() * 4)));
      sends.set(message.subject, (sends.get(message.subject) ?? 0) + 1);
      perNode.count++;
    },
  };
}

describe('claiming queued mail across nodes', () => {
  test('two dispatchers deliver 50 queued mails, each exactly once', async () => {
    const subjects = Array.from({ length: 50 }, (_, i) => `message ${i}`);
    for (const subject of subjects) {
      await enqueueMail(nodeA.prisma, box, { to: 'a@example.se', subject, text: 't', purpose: 'email-code' });
    }
    const sends = new Map<string, number>();
    const a = { count: 0 };
    const b = { count: 0 };
    const logger = pino({ level: 'silent' });
    const options = { batchSize: 5, pollIntervalMs: 60_000 };
    const dispatcherA = new MailDispatcher(nodeA.prisma, box, countingTransport(sends, a), 'n@nyckel.test', logger, options);
    const dispatcherB = new MailDispatcher(nodeB.prisma, box, countingTransport(sends, b), 'n@nyckel.test', logger, options);

    const drain = async (dispatcher: MailDispatcher) => {
      let total = 0;
      for (let n = await dispatcher.deliverDue(); n > 0; n = await dispatcher.deliverDue()) total += n;
      return total;
    };
    // (A finished send frees its slot and starts a pass of its own, so the drains see only part of
    // the sends they waited for; the counts below are the sends themselves.)
    await Promise.all([drain(dispatcherA), drain(dispatcherB), drain(dispatcherA), drain(dispatcherB)]);

    expect(a.count + b.count).toBe(50);
    expect(a.count).toBeGreaterThan(0);
    expect(b.count).toBeGreaterThan(0);
    expect([...sends.keys()].sort()).toEqual([...subjects].sort());
    expect([...sends.values()].every((count) => count === 1)).toBe(true);
    const rows = await nodeA.prisma.delivery.findMany();
    expect(rows).toHaveLength(50);
    expect(rows.every((row) => row.status === 'sent' && row.attempts === 1 && row.sentAt !== null)).toBe(true);
  });

  test('a claimed row is leased: the other dispatcher does not take it while it is being sent', async () => {
    const row = await enqueueMail(nodeA.prisma, box, { to: 'a@example.se', subject: 'leased', text: 't', purpose: 'email-code' });
    let release!: () => void;
    let started!: () => void;
    const sending = new Promise<void>((resolve) => (started = resolve));
    const slow: MailTransport = {
      name: 'smtp',
      send: () => {
        started();
        return new Promise<void>((resolve) => (release = resolve));
      },
    };
    const first = new MailDispatcher(nodeA.prisma, box, slow, 'n@nyckel.test', pino({ level: 'silent' })).deliverDue();
    await sending;
    const other: MailMessage[] = [];
    const dispatcherB = new MailDispatcher(
      nodeB.prisma,
      box,
      { name: 'smtp', send: async (m) => void other.push(m) },
      'n@nyckel.test',
      pino({ level: 'silent' }),
    );
    expect(await dispatcherB.deliverDue()).toBe(0);
    const leased = await nodeA.prisma.delivery.findUniqueOrThrow({ where: { id: row.id } });
    expect(leased).toMatchObject({ status: 'queued', attempts: 1 });
    expect(leased.nextAttempt.getTime()).toBeGreaterThan(Date.now() + 60_000);
    release();
    expect(await first).toBe(1);
    expect(other).toEqual([]);
    expect(await nodeB.prisma.delivery.findUniqueOrThrow({ where: { id: row.id } })).toMatchObject({ status: 'sent', attempts: 1 });
  });

  test('a mail enqueued in a transaction that rolls back is not written; one that commits is', async () => {
    const failing = nodeA.prisma.$transaction(async (tx) => {
      await enqueueMail(tx, box, { to: 'a@example.se', subject: 'rolled back', text: 't', purpose: 'email-code' });
      throw new Error('the challenge could not be stored');
    });
    await expect(failing).rejects.toThrow('the challenge could not be stored');
    expect(await nodeA.prisma.delivery.count()).toBe(0);

    const committed = await nodeA.prisma.$transaction((tx) =>
      enqueueMail(tx, box, { to: 'a@example.se', subject: 'committed', text: 't', purpose: 'email-code' }),
    );
    const row = await nodeB.prisma.delivery.findUniqueOrThrow({ where: { id: committed.id } });
    expect(row).toMatchObject({ status: 'queued' });
    expect(openDeliveryBody(box, row)).toMatchObject({ subject: 'committed' });
  });
});
