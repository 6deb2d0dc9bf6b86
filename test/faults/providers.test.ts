import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import { SMTPServer } from 'smtp-server';
import { loadSettings } from '../../src/config/settings.ts';
import { deliveryStatus, enqueueMail, MailDispatcher } from '../../src/delivery/dispatcher.ts';
import type { MailTransport } from '../../src/delivery/transport.ts';
import { createMailTransport } from '../../src/delivery/transports.ts';
import { SmsTransportError, twilioVerifySmsTransport } from '../../src/factors/sms/transport.ts';
import type { Database } from '../../src/storage/db.ts';
import { captureLogger, makeDue, openTestDatabase, waitFor } from '../delivery/helpers.ts';
import { FormBrowser, textOf, type Page } from '../support/browser.ts';
import { messages } from '../support/messages.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, startAuthorization } from '../support/relying-party.ts';
import { startFakeSendgrid } from '../support/sendgrid.ts';
import { startFakeTwilio, TWILIO_SID, TWILIO_TOKEN, TWILIO_VERIFY_SID } from '../support/twilio.ts';
import { testBox } from '../support/mail.ts';

const box = testBox();

/**
 * Providers that accept the connection and never answer. SMS: the user is told at once (within
 * NYCKEL_SMS_TIMEOUT_MS) that the text could not be sent, nothing is written, and once Twilio answers
 * again the sign-in carries on. Mail: the send times out (NYCKEL_MAIL_TIMEOUT_MS), is recorded as a
 * retry, other mail still goes out, and the retry delivers the mail once.
 */
const TIMEOUT_MS = 1000;
/** Far above TIMEOUT_MS and far below the transports' defaults (30 s): a send that ignored the setting fails the test. */
const MAIL_TEST_TIMEOUT_MS = 15_000;

describe('Twilio hangs', () => {
  let nyckel: TestNyckel;
  let fake: Awaited<ReturnType<typeof startFakeTwilio>>;
  let counter = 0;
  beforeAll(async () => {
    fake = await startFakeTwilio();
    nyckel = await startTestNyckel({
      env: {
        NYCKEL_SMS_TRANSPORT: 'twilio',
        TWILIO_ACCOUNT_SID: TWILIO_SID,
        TWILIO_AUTH_TOKEN: TWILIO_TOKEN,
        TWILIO_FROM: '+46700000001',
        NYCKEL_SMS_TIMEOUT_MS: String(TIMEOUT_MS),
        NYCKEL_CODE_RESEND_COOLDOWN: '0',
      },
      twilioHttpClient: fake.httpClient(),
    });
  });
  afterAll(async () => {
    await nyckel?.stop();
    await fake?.close();
  });

  /**
   * A user with one verified mobile number, signed in with the password on client `care`, stopped where
   * the second step begins (`next`, `…/mfa/sms?send=1`): following it sends the code at once.
   */
  async function passwordStep(locale: 'en' | 'sv') {
    const e164 = `+467013${String(++counter).padStart(5, '0')}`;
    const user = await nyckel.accounts.create({ email: `hang${counter}@care.example`, password: TEST_PASSWORD, locale });
    await nyckel.db.prisma.userPhone.create({ data: { userId: user.id, e164, verifiedAt: new Date() } });
    const config = await relyingParty(nyckel.url, 'care');
    const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/care-cb', scope: 'openid email', ui_locales: locale });
    const browser = new FormBrowser((url) => url.port === '4000' || url.searchParams.get('send') === '1');
    const login = await browser.submit(await browser.go(start.url.toString()), '/login', { email: user.email!, password: TEST_PASSWORD });
    expect(login.url).toMatch(/\/mfa\/sms\?send=1$/);
    const next = () => browser.go(login.url);
    const post = (from: Page, action: string, fields: Record<string, string>) => browser.submit(from, action, fields);
    const signedIn = async (last: Page) => {
      expect(last.url).toContain('code=');
      const tokens = await oidc.authorizationCodeGrant(config, new URL(last.url), {
        pkceCodeVerifier: start.verifier,
        expectedState: start.state,
        expectedNonce: start.nonce,
      });
      expect(tokens.claims()).toMatchObject({ acr: 'urn:nyckel:acr:mfa', amr: ['pwd', 'sms', 'mfa'] });
    };
    return { e164, user, next, post, signedIn };
  }

  const codeIn = (body: string) => /#(\d{6})$/.exec(body)![1];
  const textsTo = (e164: string) => fake.requests.filter((r) => r.path.endsWith('/Messages.json') && r.form.To === e164);

  test('the first text hangs: a localised "could not send" page (no 500), audited, no challenge; sending again later signs in', async () => {
    const { e164, user, next, post, signedIn } = await passwordStep('sv');
    // The first text is the one sent at once after the password.
    fake.hangNext();
    const failed = await next();
    expect(failed.status).toBe(400);
    expect(textOf(failed.html)).toContain(messages('sv')('factor_errors.send_failed'));
    expect(textOf(failed.html)).toContain(messages('sv')('mfa.other_method'));
    expect(textsTo(e164)).toEqual([expect.objectContaining({ hung: true })]);
    expect(await nyckel.db.prisma.factorChallenge.count({ where: { userId: user.id } })).toBe(0);
    const audit = await nyckel.db.prisma.auditEvent.findFirst({ where: { userId: user.id, type: 'sms.failed' } });
    // The configured timeout is what ended the wait (not the HTTP client's 30 s default).
    expect((audit!.data as { error: string }).error).toBe(`twilio: no answer (ECONNABORTED) timeout of ${TIMEOUT_MS}ms exceeded`);
    expect(JSON.stringify(audit!.data)).not.toContain(TWILIO_TOKEN);

    // Twilio answers again: the same page sends, and the code signs in.
    const target = /name="target"[^>]*value="([0-9a-f-]{36})"/.exec(failed.html)![1];
    const sent = await post(failed, '/start', { target });
    expect(sent.status).toBe(200);
    await signedIn(await post(sent, '/verify', { code: codeIn(textsTo(e164).at(-1)!.form.Body) }));
  });

  test('a resend hangs: the earlier challenge is untouched and the unsent code never works; "Resend code" works once Twilio answers', async () => {
    const { e164, user, next, post, signedIn } = await passwordStep('en');
    const sent = await next();
    expect(new URL(sent.url).pathname).toMatch(/\/mfa\/sms\/challenge\/[0-9a-f-]{36}$/);
    expect(textsTo(e164)).toHaveLength(1);
    const before = await nyckel.db.prisma.factorChallenge.findFirstOrThrow({ where: { userId: user.id } });

    fake.hangNext();
    const failed = await post(sent, '/resend', {});
    expect(failed.status).toBe(400);
    expect(textOf(failed.html)).toContain(messages('en')('factor_errors.send_failed'));
    expect(await nyckel.db.prisma.factorChallenge.findMany({ where: { userId: user.id } })).toEqual([before]);
    const audits = await nyckel.db.prisma.auditEvent.findMany({ where: { userId: user.id, type: 'sms.failed' } });
    expect(audits.map((row) => (row.data as { error: string }).error)).toEqual([`twilio: no answer (ECONNABORTED) timeout of ${TIMEOUT_MS}ms exceeded`]);
    // Twilio may still deliver the held text later; its code must not be accepted.
    const unsent = textsTo(e164).at(-1)!;
    expect(unsent.hung).toBe(true);
    const refused = await post(failed, '/verify', { code: codeIn(unsent.form.Body) });
    expect(refused.status).toBe(401);

    const resent = await post(refused, '/resend', {});
    expect(resent.status).toBe(200);
    const delivered = textsTo(e164).at(-1)!;
    expect(delivered.hung).toBeUndefined();
    await signedIn(await post(resent, '/verify', { code: codeIn(delivered.form.Body) }));
  });

  test('Twilio Verify: a start or a check that hangs is an SmsTransportError, as a 5xx is', async () => {
    const verify = twilioVerifySmsTransport(
      { accountSid: TWILIO_SID, authToken: TWILIO_TOKEN, verifyServiceSid: TWILIO_VERIFY_SID },
      { httpClient: fake.httpClient(), timeoutMs: TIMEOUT_MS },
    );
    fake.hangNext(2);
    const started = await verify.start({ to: '+46701399999', locale: 'en' }).catch((error: unknown) => error);
    expect(started).toBeInstanceOf(SmsTransportError);
    expect((started as Error).message).toBe(`twilio: no answer (ECONNABORTED) timeout of ${TIMEOUT_MS}ms exceeded`);
    await expect(verify.check({ to: '+46701399999', code: '123456' })).rejects.toBeInstanceOf(SmsTransportError);
  });
});

describe('mail providers that hang', () => {
  let database: { db: Database; close(): Promise<void> };
  const FROM = 'Nyckel <no-reply@nyckel.test>';
  beforeAll(async () => {
    database = await openTestDatabase();
  });
  afterAll(() => database?.close());
  beforeEach(() => database.db.prisma.delivery.deleteMany());

  /**
   * One mail's send hangs until the transport's timeout; a second mail enqueued meanwhile goes out;
   * the first is a recorded retry, and the retry delivers it. `holding()` says the provider holds a
   * connection unanswered; `accepted(to)` counts the mails for `to` it took (answered, not merely held).
   */
  async function hangThenRetry(
    transport: MailTransport,
    provider: { hangNext(): void; holding(): boolean; accepted(to: string): number },
    expectedError: RegExp,
  ) {
    const { prisma } = database.db;
    const dispatcher = new MailDispatcher(prisma, box, transport, FROM, captureLogger().logger, { retryDelaysSeconds: [10, 60] });
    provider.hangNext();
    const held = await enqueueMail(prisma, box, { to: 'held@example.se', subject: 'Kod', text: 'Kod 1', purpose: 'email-code' });
    dispatcher.kick();
    await waitFor(async () => provider.holding(), 'the provider to hold the first send');
    const meanwhile = await enqueueMail(prisma, box, { to: 'meanwhile@example.se', subject: 'Kod', text: 'Kod 2', purpose: 'email-code' });
    // Resolves once every send in flight is recorded, the hung one included.
    await dispatcher.deliverDue();
    const sent = await deliveryStatus(prisma, meanwhile.id);
    expect(sent).toMatchObject({ status: 'sent', attempts: 1 });
    const row = await prisma.delivery.findUniqueOrThrow({ where: { id: held.id } });
    expect(row).toMatchObject({ status: 'queued', attempts: 1 });
    expect(row.lastError).toMatch(expectedError);
    expect(row.nextAttempt.getTime()).toBeGreaterThan(Date.now() + 5000);
    // The other mail went out while the hung send still held its slot: before the hang was recorded
    // as a retry (at next_attempt minus the first retry delay, 10 s).
    expect(sent!.sentAt!.getTime()).toBeLessThan(row.nextAttempt.getTime() - 10_000);
    expect(provider.accepted('held@example.se')).toBe(0);

    await makeDue(prisma, held.id);
    expect(await dispatcher.deliverDue()).toBe(1);
    expect(await dispatcher.deliverDue()).toBe(0);
    expect(await deliveryStatus(prisma, held.id)).toMatchObject({ status: 'sent', attempts: 2 });
    expect(provider.accepted('held@example.se')).toBe(1);
    expect(provider.accepted('meanwhile@example.se')).toBe(1);
    await dispatcher.stop();
  }

  test(
    'SendGrid accepts the request and never answers: a retry with the error, other mail flows, then delivered once',
    async () => {
      const fake = await startFakeSendgrid();
      try {
        const transport = createMailTransport(
          loadSettings({
            NODE_ENV: 'test',
            SENDGRID_API_KEY: 'SG.fake-key.Zm9vYmFyYmF6',
            NYCKEL_SENDGRID_BASE_URL: fake.baseUrl,
            NYCKEL_MAIL_TIMEOUT_MS: String(TIMEOUT_MS),
          }),
        );
        const accepted = (to: string) => fake.requests.filter((r) => !r.hung && r.body.personalizations[0].to[0].email === to).length;
        const holding = () => fake.requests.some((r) => r.hung);
        await hangThenRetry(
          transport,
          { hangNext: () => fake.hangNext(), holding, accepted },
          new RegExp(`^SendGrid request failed: ECONNABORTED timeout of ${TIMEOUT_MS}ms exceeded$`),
        );
      } finally {
        await fake.close();
      }
    },
    MAIL_TEST_TIMEOUT_MS,
  );

  test(
    'an SMTP server that accepts TCP and never greets: a retry with the error, other mail flows, then delivered once',
    async () => {
      const received: string[][] = [];
      const smtp = new SMTPServer({
        authOptional: true,
        disabledCommands: ['STARTTLS'],
        logger: false,
        onData(stream, session, callback) {
          stream.resume();
          stream.on('end', () => {
            received.push(session.envelope.rcptTo.map((r) => r.address));
            callback();
          });
        },
      });
      await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', () => resolve()));
      const smtpPort = (smtp as unknown as { server: net.Server }).server.address() as AddressInfo;
      // In front of it, a plain TCP server: `hangNext` connections are accepted and left silent, the rest relayed.
      let silent = 0;
      let held = 0;
      const sockets = new Set<net.Socket>();
      const front = net.createServer((client) => {
        sockets.add(client);
        client.on('close', () => sockets.delete(client)).on('error', () => undefined);
        if (silent > 0) {
          silent--;
          held++;
          return;
        }
        const upstream = net.connect(smtpPort.port, '127.0.0.1');
        upstream.on('error', () => client.destroy()).on('close', () => client.destroy());
        client.on('close', () => upstream.destroy());
        client.pipe(upstream).pipe(client);
      });
      await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', () => resolve()));
      try {
        const transport = createMailTransport(
          loadSettings({
            NODE_ENV: 'test',
            NYCKEL_SMTP_URL: `smtp://127.0.0.1:${(front.address() as AddressInfo).port}`,
            NYCKEL_MAIL_TIMEOUT_MS: String(TIMEOUT_MS),
          }),
        );
        const accepted = (to: string) => received.filter((rcpt) => rcpt.includes(to)).length;
        await hangThenRetry(transport, { hangNext: () => silent++, holding: () => held > 0, accepted }, /^SMTP: ETIMEDOUT Greeting never received$/);
        (transport as MailTransport & { close(): void }).close();
      } finally {
        for (const socket of sockets) socket.destroy();
        await new Promise<void>((resolve) => front.close(() => resolve()));
        await new Promise<void>((resolve) => smtp.close(() => resolve()));
      }
    },
    MAIL_TEST_TIMEOUT_MS,
  );
});
