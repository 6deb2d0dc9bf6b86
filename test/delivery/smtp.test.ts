import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import PostalMime from 'postal-mime';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import { deliveryStatus, enqueueMail, MailDispatcher } from '../../src/delivery/dispatcher.ts';
import { openDeliveryBody } from '../../src/delivery/sealed-body.ts';
import { SmtpTransport } from '../../src/delivery/smtp-transport.ts';
import { createMailTransport } from '../../src/delivery/transports.ts';
import { loadSettings } from '../../src/config/settings.ts';
import type { Database } from '../../src/storage/db.ts';
import { captureLogger, makeDue, openTestDatabase } from './helpers.ts';
import { testBox } from '../support/mail.ts';

const box = testBox();

interface Received {
  mailFrom: string;
  rcptTo: string[];
  raw: Buffer;
}

/** A real SMTP server on loopback; `refuse` makes it answer DATA with a temporary error. */
async function startSmtpServer(options: { users?: Record<string, string> } = {}) {
  const received: Received[] = [];
  const state = { refuse: 0, dataCalls: 0 };
  const server = new SMTPServer({
    authOptional: !options.users,
    allowInsecureAuth: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onAuth(auth, _session, callback) {
      if (options.users && options.users[auth.username ?? ''] === auth.password) return callback(null, { user: auth.username });
      return callback(new Error('Authentication credentials invalid'));
    },
    onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        state.dataCalls++;
        if (state.refuse > 0) {
          state.refuse--;
          const error = Object.assign(new Error('Mailbox temporarily unavailable, try again later'), { responseCode: 451 });
          return callback(error);
        }
        received.push({
          mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          rcptTo: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = (server as unknown as { server: { address(): AddressInfo } }).server.address();
  return { server, port, received, state, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

let database: { db: Database; close(): Promise<void> };
let smtp: Awaited<ReturnType<typeof startSmtpServer>>;
const FROM = 'Nyckel Söderström <no-reply@nyckel.test>';

beforeAll(async () => {
  database = await openTestDatabase();
  smtp = await startSmtpServer();
});
afterAll(async () => {
  await smtp.close();
  await database.close();
});
beforeEach(async () => {
  await database.db.prisma.delivery.deleteMany();
  smtp.received.length = 0;
  smtp.state.refuse = 0;
  smtp.state.dataCalls = 0;
});

describe('SMTP transport through the dispatcher', () => {
  test("a mail's sender name (the client's or the service's) is the From name, over NYCKEL_MAIL_FROM's address", async () => {
    const { prisma } = database.db;
    const dispatcher = new MailDispatcher(prisma, box, new SmtpTransport(`smtp://127.0.0.1:${smtp.port}`), FROM, captureLogger().logger);
    await enqueueMail(prisma, box, {
      to: 'asa@example.se',
      subject: 'Kod',
      text: 'Din kod är 428913.',
      purpose: 'email-code',
      fromName: 'Statistikportalen Åre',
    });
    expect(await dispatcher.deliverDue()).toBe(1);
    const parsed = await PostalMime.parse(smtp.received[0].raw);
    expect(parsed.from).toMatchObject({ name: 'Statistikportalen Åre', address: 'no-reply@nyckel.test' });
    expect(smtp.received[0].mailFrom).toBe('no-reply@nyckel.test');
  });

  test('delivers From, To, Subject, text and html, with å ä ö and æ ø intact; logs the outcome without the body', async () => {
    const { prisma } = database.db;
    const { logger, lines, entries } = captureLogger();
    // Through the settings, as Nyckel builds it.
    const transport = createMailTransport(loadSettings({ NODE_ENV: 'test', NYCKEL_MAIL_TRANSPORT: 'smtp', NYCKEL_SMTP_URL: `smtp://127.0.0.1:${smtp.port}` }));
    expect(transport.name).toBe('smtp');
    const dispatcher = new MailDispatcher(prisma, box, transport, FROM, logger);
    const text = 'Hej Åsa Öberg!\nDin kod är 428913. Blåbærgrød på Ærø.\nhttps://nyckel.test/verify?t=abc';
    const html = '<p>Hej <b>Åsa Öberg</b>! Din kod är <code>428913</code>. Blåbærgrød på Ærø.</p>';
    const queued = await enqueueMail(prisma, box, { to: 'asa.oberg@example.se', subject: 'Din kod: åäö ÅÄÖ – æøå ÆØÅ', text, html, purpose: 'email-code' });
    expect(queued.status).toBe('queued');

    expect(await dispatcher.deliverDue()).toBe(1);

    expect(smtp.received).toHaveLength(1);
    const [arrived] = smtp.received;
    expect(arrived.mailFrom).toBe('no-reply@nyckel.test');
    expect(arrived.rcptTo).toEqual(['asa.oberg@example.se']);
    const parsed = await PostalMime.parse(arrived.raw);
    expect(parsed.from).toMatchObject({ name: 'Nyckel Söderström', address: 'no-reply@nyckel.test' });
    expect(parsed.to).toEqual([expect.objectContaining({ address: 'asa.oberg@example.se' })]);
    expect(parsed.subject).toBe('Din kod: åäö ÅÄÖ – æøå ÆØÅ');
    expect(parsed.text?.trimEnd()).toBe(text);
    expect(parsed.html?.trimEnd()).toBe(html);

    const status = await deliveryStatus(prisma, queued.id);
    expect(status).toMatchObject({ status: 'sent', attempts: 1, transport: 'smtp', lastError: null });
    expect(status!.sentAt).toBeInstanceOf(Date);

    const sent = entries().find((entry) => entry.msg === 'mail sent');
    expect(sent).toMatchObject({ deliveryId: queued.id, purpose: 'email-code', transport: 'smtp', attempt: 1 });
    expect(lines.join('\n')).not.toContain('428913');
    expect(lines.join('\n')).not.toContain('Blåbær');
  });

  test('a refusing server: retried after the delay (the body kept sealed), then failed after the last one; the row is kept, its body cleared', async () => {
    const { prisma } = database.db;
    const { logger, entries } = captureLogger();
    const dispatcher = new MailDispatcher(prisma, box, new SmtpTransport(`smtp://127.0.0.1:${smtp.port}`), FROM, logger, {
      retryDelaysSeconds: [30, 120],
    });
    const queued = await enqueueMail(prisma, box, { to: 'bo@example.dk', subject: 'Kode', text: 'Din kode er 771234', purpose: 'email-code' });
    smtp.state.refuse = 100;

    const before = Date.now();
    expect(await dispatcher.deliverDue()).toBe(1);
    let row = await prisma.delivery.findUniqueOrThrow({ where: { id: queued.id } });
    expect(row).toMatchObject({ status: 'queued', attempts: 1, text: null });
    expect(openDeliveryBody(box, row)).toMatchObject({ text: 'Din kode er 771234' });
    expect(row.lastError).toMatch(/451/);
    expect(row.nextAttempt.getTime()).toBeGreaterThanOrEqual(before + 25_000);
    expect(row.nextAttempt.getTime()).toBeLessThan(Date.now() + 35_000);

    // Not due yet: nothing is attempted.
    expect(await dispatcher.deliverDue()).toBe(0);
    expect(smtp.state.dataCalls).toBe(1);

    await makeDue(prisma, queued.id);
    expect(await dispatcher.deliverDue()).toBe(1);
    row = await prisma.delivery.findUniqueOrThrow({ where: { id: queued.id } });
    expect(row).toMatchObject({ status: 'queued', attempts: 2 });
    expect(row.nextAttempt.getTime()).toBeGreaterThan(Date.now() + 100_000); // the second delay

    await makeDue(prisma, queued.id);
    expect(await dispatcher.deliverDue()).toBe(1);
    row = await prisma.delivery.findUniqueOrThrow({ where: { id: queued.id } });
    expect(row).toMatchObject({ status: 'failed', attempts: 3, body: null, subject: null, text: null, html: null, sentAt: null, transport: 'smtp' });
    expect(row.lastError).toMatch(/^SMTP: .*451.*try again later/i);
    expect(smtp.state.dataCalls).toBe(3);
    expect(smtp.received).toHaveLength(0);

    // A failed row is never picked up again.
    await prisma.delivery.update({ where: { id: queued.id }, data: { nextAttempt: new Date(Date.now() - 1000) } });
    expect(await dispatcher.deliverDue()).toBe(0);

    const outcomes = entries().map((entry) => entry.msg);
    expect(outcomes).toEqual(['mail send failed; will retry', 'mail send failed; will retry', 'mail could not be delivered; giving up']);
    expect(JSON.stringify(entries())).not.toContain('771234');
  });

  test('a temporary refusal, then acceptance: delivered exactly once on the retry', async () => {
    const { prisma } = database.db;
    const dispatcher = new MailDispatcher(prisma, box, new SmtpTransport(`smtp://127.0.0.1:${smtp.port}`), FROM, captureLogger().logger, {
      retryDelaysSeconds: [10],
    });
    const queued = await enqueueMail(prisma, box, { to: 'eva@example.se', subject: 'Länk', text: 'Logga in: https://nyckel.test/l/1', purpose: 'email-link' });
    smtp.state.refuse = 1;
    await dispatcher.deliverDue();
    expect(await deliveryStatus(prisma, queued.id)).toMatchObject({ status: 'queued', attempts: 1 });
    await makeDue(prisma, queued.id);
    await dispatcher.deliverDue();
    expect(await deliveryStatus(prisma, queued.id)).toMatchObject({ status: 'sent', attempts: 2 });
    expect(smtp.received).toHaveLength(1);
    expect((await PostalMime.parse(smtp.received[0].raw)).subject).toBe('Länk');
  });

  test('server down: the error is recorded and the mail retried; the SMTP password never appears', async () => {
    const { prisma } = database.db;
    const down = await startSmtpServer();
    await down.close();
    const password = 'pw-Hemlig-9f3k';
    const dispatcher = new MailDispatcher(
      prisma,
      box,
      new SmtpTransport(`smtp://mailer:${password}@127.0.0.1:${down.port}`, { timeoutMs: 2000 }),
      FROM,
      captureLogger().logger,
      { retryDelaysSeconds: [10] },
    );
    const queued = await enqueueMail(prisma, box, { to: 'per@example.se', subject: 'Kod', text: 'Kod 1', purpose: 'email-code' });
    expect(await dispatcher.deliverDue()).toBe(1);
    const row = await prisma.delivery.findUniqueOrThrow({ where: { id: queued.id } });
    expect(row.status).toBe('queued');
    expect(row.lastError).toMatch(/^SMTP: .*(ECONNREFUSED|ECONNECTION)/);
    expect(row.lastError).not.toContain(password);
  });

  test('authentication: wrong credentials fail without the password in last_error; right ones deliver', async () => {
    const { prisma } = database.db;
    const secured = await startSmtpServer({ users: { mailer: 'right-Passw0rd' } });
    try {
      const wrong = new MailDispatcher(prisma, box, new SmtpTransport(`smtp://mailer:wrong-Passw0rd@127.0.0.1:${secured.port}`), FROM, captureLogger().logger, {
        retryDelaysSeconds: [],
      });
      const first = await enqueueMail(prisma, box, { to: 'a@example.se', subject: 'x', text: 'y', purpose: 'email-code' });
      await wrong.deliverDue();
      const failed = await prisma.delivery.findUniqueOrThrow({ where: { id: first.id } });
      expect(failed.status).toBe('failed');
      expect(failed.lastError).toMatch(/EAUTH/);
      expect(failed.lastError).not.toContain('wrong-Passw0rd');

      const right = new MailDispatcher(prisma, box, new SmtpTransport(`smtp://mailer:right-Passw0rd@127.0.0.1:${secured.port}`), FROM, captureLogger().logger);
      const second = await enqueueMail(prisma, box, { to: 'b@example.se', subject: 'x', text: 'y', purpose: 'email-code' });
      await right.deliverDue();
      expect(await deliveryStatus(prisma, second.id)).toMatchObject({ status: 'sent' });
      expect(secured.received.map((r) => r.rcptTo)).toEqual([['b@example.se']]);
    } finally {
      await secured.close();
    }
  });
});
