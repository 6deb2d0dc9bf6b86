import { afterAll, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import { loadSettings } from '../../src/config/settings.ts';
import { deliveryStatus, enqueueMail, MailDispatcher } from '../../src/delivery/dispatcher.ts';
import { SendgridTransport } from '../../src/delivery/sendgrid-transport.ts';
import type { MailTransport } from '../../src/delivery/transport.ts';
import { createMailTransport } from '../../src/delivery/transports.ts';
import type { Database } from '../../src/storage/db.ts';
import { startFakeSendgrid } from '../support/sendgrid.ts';
import { captureLogger, makeDue, openTestDatabase } from './helpers.ts';
import { testBox } from '../support/mail.ts';

const box = testBox();

const API_KEY = 'SG.fake-key.Zm9vYmFyYmF6';
const FROM = 'Nyckel <no-reply@nyckel.test>';
let database: { db: Database; close(): Promise<void> };
let fake: Awaited<ReturnType<typeof startFakeSendgrid>>;

beforeAll(async () => {
  database = await openTestDatabase();
  fake = await startFakeSendgrid();
});
afterAll(async () => {
  await fake.close();
  await database.close();
});
beforeEach(async () => {
  await database.db.prisma.delivery.deleteMany();
  fake.requests.length = 0;
  fake.answers.length = 0;
});

function dispatcherFor(transport: MailTransport = new SendgridTransport({ apiKey: API_KEY, baseUrl: fake.baseUrl }), retryDelaysSeconds = [10, 60]) {
  const log = captureLogger();
  return { dispatcher: new MailDispatcher(database.db.prisma, box, transport, FROM, log.logger, { retryDelaysSeconds }), log };
}

describe('SendGrid transport (the real @sendgrid/mail SDK against a loopback fake)', () => {
  test("a mail's sender name (the client's or the service's) is the From name, over NYCKEL_MAIL_FROM's address", async () => {
    const { prisma } = database.db;
    const { dispatcher } = dispatcherFor();
    await enqueueMail(prisma, box, { to: 'soren@example.dk', subject: 'Kode', text: 'Din kode er 550912.', purpose: 'email-code', fromName: 'Ærø Kommune' });
    expect(await dispatcher.deliverDue()).toBe(1);
    expect(fake.requests[0].body.from).toEqual({ email: 'no-reply@nyckel.test', name: 'Ærø Kommune' });
  });

  test('POST /v3/mail/send with the bearer key, personalizations, from, subject, text/plain and text/html', async () => {
    const { prisma } = database.db;
    const settings = loadSettings({ NODE_ENV: 'test', SENDGRID_API_KEY: API_KEY, NYCKEL_SENDGRID_BASE_URL: `${fake.baseUrl}/` });
    const transport = createMailTransport(settings);
    expect(transport.name).toBe('sendgrid');
    const { dispatcher, log } = dispatcherFor(transport);
    const queued = await enqueueMail(prisma, box, {
      to: 'soren@example.dk',
      subject: 'Din kode: æ ø å',
      text: 'Hej Søren, din kode er 550912.',
      html: '<p>Hej Søren, din kode er <b>550912</b>.</p>',
      purpose: 'email-code',
    });

    expect(await dispatcher.deliverDue()).toBe(1);

    expect(fake.requests).toHaveLength(1);
    const [request] = fake.requests;
    expect(request.method).toBe('POST');
    expect(request.url).toBe('/v3/mail/send');
    expect(request.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(request.headers['content-type']).toMatch(/^application\/json/);
    const body = request.body;
    expect(body.personalizations).toEqual([expect.objectContaining({ to: [{ email: 'soren@example.dk' }] })]);
    expect(body.from).toEqual({ email: 'no-reply@nyckel.test', name: 'Nyckel' });
    expect(body.subject).toBe('Din kode: æ ø å');
    expect(body.content).toEqual([
      { type: 'text/plain', value: 'Hej Søren, din kode er 550912.' },
      { type: 'text/html', value: '<p>Hej Søren, din kode er <b>550912</b>.</p>' },
    ]);
    // Links in sign-in mail must not be rewritten through a click tracker.
    expect(body.tracking_settings.click_tracking).toEqual({ enable: false, enable_text: false });

    expect(await deliveryStatus(prisma, queued.id)).toMatchObject({ status: 'sent', transport: 'sendgrid', attempts: 1 });
    expect(log.entries().map((e) => e.msg)).toEqual(['mail sent']);
    expect(log.lines.join('\n')).not.toContain('550912');
    expect(log.lines.join('\n')).not.toContain(API_KEY);
  });

  test('a 500 is retried after the delay, and the retry delivers', async () => {
    const { prisma } = database.db;
    const { dispatcher } = dispatcherFor();
    fake.answers.push({ status: 500, body: { errors: [{ message: 'Internal server error' }] } });
    const queued = await enqueueMail(prisma, box, { to: 'a@example.se', subject: 'Kod', text: 'Kod 1', purpose: 'email-code' });

    await dispatcher.deliverDue();
    const row = await prisma.delivery.findUniqueOrThrow({ where: { id: queued.id } });
    expect(row).toMatchObject({ status: 'queued', attempts: 1 });
    expect(row.lastError).toBe('SendGrid answered HTTP 500 Internal Server Error: Internal server error');
    expect(row.nextAttempt.getTime()).toBeGreaterThan(Date.now() + 5000);
    expect(await dispatcher.deliverDue()).toBe(0);

    await makeDue(prisma, queued.id);
    await dispatcher.deliverDue();
    expect(await deliveryStatus(prisma, queued.id)).toMatchObject({ status: 'sent', attempts: 2 });
    expect(fake.requests).toHaveLength(2);
  });

  test('a 401 fails after the retries with a clear last_error that does not contain the key', async () => {
    const { prisma } = database.db;
    const { dispatcher, log } = dispatcherFor();
    const refusal = {
      status: 401,
      body: { errors: [{ message: 'The provided authorization grant is invalid, expired, or revoked', field: null, help: null }] },
    };
    fake.answers.push(refusal, refusal, refusal);
    const queued = await enqueueMail(prisma, box, { to: 'a@example.se', subject: 'Kod', text: 'Kod 2', purpose: 'email-code' });
    for (let i = 0; i < 3; i++) {
      if (i > 0) await makeDue(prisma, queued.id);
      expect(await dispatcher.deliverDue()).toBe(1);
    }
    const row = await prisma.delivery.findUniqueOrThrow({ where: { id: queued.id } });
    expect(row).toMatchObject({ status: 'failed', attempts: 3 });
    expect(row.lastError).toBe(
      'SendGrid answered HTTP 401 Unauthorized (check SENDGRID_API_KEY): The provided authorization grant is invalid, expired, or revoked',
    );
    expect(fake.requests).toHaveLength(3);
    expect(log.lines.join('\n')).not.toContain(API_KEY);
    expect(log.entries().at(-1)).toMatchObject({ msg: 'mail could not be delivered; giving up', deliveryId: queued.id });
  });

  test('a 400 names the field SendGrid objected to', async () => {
    const { prisma } = database.db;
    const { dispatcher } = dispatcherFor(undefined, []);
    fake.answers.push({ status: 400, body: { errors: [{ message: 'The from address does not match a verified Sender Identity.', field: 'from' }] } });
    const queued = await enqueueMail(prisma, box, { to: 'a@example.se', subject: 'Kod', text: 'Kod 3', purpose: 'email-code' });
    await dispatcher.deliverDue();
    expect(await deliveryStatus(prisma, queued.id)).toMatchObject({
      status: 'failed',
      lastError: 'SendGrid answered HTTP 400 Bad Request: The from address does not match a verified Sender Identity. — from',
    });
  });

  test('SendGrid unreachable: a network error is recorded and retried', async () => {
    const { prisma } = database.db;
    const gone = await startFakeSendgrid();
    await gone.close();
    const { dispatcher } = dispatcherFor(new SendgridTransport({ apiKey: API_KEY, baseUrl: gone.baseUrl }));
    const queued = await enqueueMail(prisma, box, { to: 'a@example.se', subject: 'Kod', text: 'Kod 4', purpose: 'email-code' });
    await dispatcher.deliverDue();
    const row = await prisma.delivery.findUniqueOrThrow({ where: { id: queued.id } });
    expect(row.status).toBe('queued');
    expect(row.lastError).toMatch(/^SendGrid request failed: ECONNREFUSED/);
    expect(row.lastError).not.toContain(API_KEY);
  });

  test('two transports keep their own key and base URL (no shared SDK singleton)', async () => {
    const other = await startFakeSendgrid();
    try {
      const first = new SendgridTransport({ apiKey: 'SG.first', baseUrl: fake.baseUrl });
      const second = new SendgridTransport({ apiKey: 'SG.second', baseUrl: other.baseUrl });
      const message = { to: 'a@example.se', from: FROM, subject: 's', text: 't' };
      await second.send(message);
      await first.send(message);
      expect(fake.requests.map((r) => r.headers.authorization)).toEqual(['Bearer SG.first']);
      expect(other.requests.map((r) => r.headers.authorization)).toEqual(['Bearer SG.second']);
      expect(fake.requests[0].body.content).toEqual([{ type: 'text/plain', value: 't' }]);
    } finally {
      await other.close();
    }
  });
});
