import { afterAll, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import { deliveryStatus, enqueueMail, MailDispatcher } from '../../src/delivery/dispatcher.ts';
import type { MailMessage, MailTransport } from '../../src/delivery/transport.ts';
import { NyckelError } from '../../src/errors.ts';
import type { Database } from '../../src/storage/db.ts';
import { captureLogger, openTestDatabase, waitFor } from './helpers.ts';
import { testBox } from '../support/mail.ts';

const box = testBox();

/** A transport whose sends wait until the test lets them go. */
function gatedTransport() {
  const sent: MailMessage[] = [];
  const waiting: Array<() => void> = [];
  const transport: MailTransport = {
    name: 'smtp',
    send: (message) =>
      new Promise<void>((resolve) => {
        waiting.push(() => {
          sent.push(message);
          resolve();
        });
      }),
  };
  return { transport, sent, waiting, releaseAll: () => waiting.splice(0).forEach((go) => go()) };
}

let database: { db: Database; close(): Promise<void> };
beforeAll(async () => {
  database = await openTestDatabase();
});
afterAll(async () => {
  await database.close();
});
beforeEach(async () => {
  await database.db.prisma.delivery.deleteMany();
});

describe('MailDispatcher', () => {
  test('stop() waits for the send in flight, records its outcome, and later kicks do nothing', async () => {
    const { prisma } = database.db;
    const gate = gatedTransport();
    const dispatcher = new MailDispatcher(prisma, box, gate.transport, 'Nyckel <n@nyckel.test>', captureLogger().logger, { pollIntervalMs: 60_000 });
    const row = await enqueueMail(prisma, box, { to: 'a@example.se', subject: 'Hej', text: 'Kod 1', purpose: 'email-code' });
    dispatcher.start();
    await waitFor(async () => gate.waiting.length === 1, 'the send to begin');

    let stopped = false;
    const stopping = dispatcher.stop().then(() => (stopped = true));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(stopped).toBe(false);
    gate.releaseAll();
    await stopping;
    expect(gate.sent.map((m) => m.to)).toEqual(['a@example.se']);
    expect(await deliveryStatus(prisma, row.id)).toMatchObject({ status: 'sent', attempts: 1 });

    const later = await enqueueMail(prisma, box, { to: 'b@example.se', subject: 'Hej', text: 'Kod 2', purpose: 'email-code' });
    dispatcher.kick();
    expect(await dispatcher.deliverDue()).toBe(0);
    expect(gate.waiting).toHaveLength(0);
    expect(await deliveryStatus(prisma, later.id)).toMatchObject({ status: 'queued', attempts: 0 });
  });

  test('start() polls: mail enqueued without a kick (e.g. by another node) goes out; the timer is unref()d', async () => {
    const { prisma } = database.db;
    const sent: string[] = [];
    const transport: MailTransport = { name: 'outbox', send: async (m) => void sent.push(m.subject) };
    const dispatcher = new MailDispatcher(prisma, box, transport, 'n@nyckel.test', captureLogger().logger, { pollIntervalMs: 30 });
    dispatcher.start();
    try {
      expect((dispatcher as unknown as { timer: NodeJS.Timeout }).timer.hasRef()).toBe(false);
      await enqueueMail(prisma, box, { to: 'a@example.se', subject: 'polled', text: 't', purpose: 'email-code' });
      await waitFor(async () => sent.length === 1, 'the poll to deliver');
      expect(sent).toEqual(['polled']);
    } finally {
      await dispatcher.stop();
    }
  });

  test('kicks during a pass are not lost: mail enqueued meanwhile is delivered, once', async () => {
    const { prisma } = database.db;
    const gate = gatedTransport();
    const dispatcher = new MailDispatcher(prisma, box, gate.transport, 'n@nyckel.test', captureLogger().logger, { pollIntervalMs: 60_000 });
    await enqueueMail(prisma, box, { to: 'a@example.se', subject: '1', text: 't', purpose: 'email-code' });
    dispatcher.kick();
    await waitFor(async () => gate.waiting.length === 1, 'the first send');
    await enqueueMail(prisma, box, { to: 'b@example.se', subject: '2', text: 't', purpose: 'email-code' });
    for (let i = 0; i < 5; i++) dispatcher.kick();
    gate.releaseAll();
    await waitFor(async () => {
      gate.releaseAll();
      return gate.sent.length === 2;
    }, 'both sends');
    await dispatcher.stop();
    expect(gate.sent.map((m) => m.subject).sort()).toEqual(['1', '2']);
    expect(await prisma.delivery.count({ where: { status: 'sent' } })).toBe(2);
  });

  test('the From of every mail is the configured one; an html-less mail is sent without html', async () => {
    const { prisma } = database.db;
    const seen: MailMessage[] = [];
    const dispatcher = new MailDispatcher(
      prisma,
      box,
      { name: 'outbox', send: async (m) => void seen.push(m) },
      'Nyckel <x@nyckel.test>',
      captureLogger().logger,
    );
    await enqueueMail(prisma, box, { to: ' c@example.se ', subject: 'S', text: 'T', purpose: 'email-code' });
    await dispatcher.deliverDue();
    expect(seen).toEqual([{ to: 'c@example.se', from: 'Nyckel <x@nyckel.test>', subject: 'S', text: 'T' }]);
  });

  test('deliveryStatus: undefined for an unknown or malformed id', async () => {
    expect(await deliveryStatus(database.db.prisma, '00000000-0000-4000-8000-000000000000')).toBeUndefined();
    expect(await deliveryStatus(database.db.prisma, 'not-a-uuid')).toBeUndefined();
  });
});

describe('enqueueMail', () => {
  test('refuses what could not be a mail: bad recipient, header injection in the subject, empty text, odd purpose', async () => {
    const { prisma } = database.db;
    const good = { to: 'a@example.se', subject: 'S', text: 'T', purpose: 'email-code' };
    for (const bad of [
      { ...good, to: 'not an address' },
      { ...good, to: 'a@example.se, b@example.se' },
      { ...good, subject: 'Hi\r\nBcc: victim@example.se' },
      { ...good, subject: '' },
      { ...good, text: '' },
      { ...good, purpose: 'has spaces' },
    ]) {
      await expect(enqueueMail(prisma, box, bad)).rejects.toThrow(NyckelError);
    }
    expect(await prisma.delivery.count()).toBe(0);
    const row = await enqueueMail(prisma, box, { ...good, to: 'åsa@exempel.se' });
    expect(row).toMatchObject({ channel: 'email', recipient: 'åsa@exempel.se', status: 'queued', attempts: 0, html: null });
  });
});
