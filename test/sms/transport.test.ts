import { afterAll, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import { loadSettings } from '../../src/config/settings.ts';
import { AuditLog } from '../../src/accounts/audit.ts';
import { devOutboxRoutes } from '../../src/web/outbox-routes.ts';
import { smsFactor } from '../../src/factors/sms/index.ts';
import { countryOf, parsePhone } from '../../src/factors/sms/guard.ts';
import { createSmsTransport, SmsTransportError, twilioSmsTransport, twilioVerifySmsTransport } from '../../src/factors/sms/transport.ts';
import type { FactorDependencies } from '../../src/factors/deps.ts';
import type { Database } from '../../src/storage/db.ts';
import { captureLogger, openTestDatabase } from '../delivery/helpers.ts';
import { startFakeTwilio, TWILIO_SID, TWILIO_TOKEN, TWILIO_VERIFY_SID } from '../support/twilio.ts';
import { testBox } from '../support/mail.ts';

let database: { db: Database; close(): Promise<void> };
const outboxStore = () => ({ prisma: database.db.prisma, box: testBox() });
let fake: Awaited<ReturnType<typeof startFakeTwilio>>;

beforeAll(async () => {
  database = await openTestDatabase();
  fake = await startFakeTwilio();
});
afterAll(async () => {
  await fake.close();
  await database.close();
});
beforeEach(() => {
  fake.requests.length = 0;
  fake.failNext.length = 0;
});

const twilioSettings = { accountSid: TWILIO_SID, authToken: TWILIO_TOKEN, from: '+46700000001', verifyServiceSid: TWILIO_VERIFY_SID };

describe('Twilio Programmable Messaging', () => {
  test('a messaging service SID (MG…) is sent as MessagingServiceSid, not From', async () => {
    const service = 'MG' + 'abcdef0123456789'.repeat(2);
    const transport = twilioSmsTransport({ ...twilioSettings, from: service }, { httpClient: fake.httpClient() });
    await transport.send({ to: '+46701234572', body: 'Din kod är 123456.', purpose: 'sms' });
    expect(fake.requests).toHaveLength(1);
    expect(fake.requests[0].form).toEqual({ To: '+46701234572', Body: 'Din kod är 123456.', MessagingServiceSid: service });
  });

  test('a provider error becomes an SmsTransportError with status and code, never the auth token', async () => {
    const transport = twilioSmsTransport(twilioSettings, { httpClient: fake.httpClient() });
    fake.failNext.push(500);
    const error = await transport.send({ to: '+46701234572', body: 'x', purpose: 'sms' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SmsTransportError);
    expect((error as Error).message).toBe('twilio: HTTP 500 (20500) Internal Server Error');
    expect((error as Error).message).not.toContain(TWILIO_TOKEN);
    // No retries: one request only.
    expect(fake.requests).toHaveLength(1);
  });
});

describe('Twilio Verify', () => {
  test('start, a wrong check, the right check, and no pending verification (404) is a rejection', async () => {
    const transport = twilioVerifySmsTransport(twilioSettings, { httpClient: fake.httpClient() });
    await transport.start({ to: '+46701234573', locale: 'sv' });
    expect(fake.requests[0].form).toEqual({ To: '+46701234573', Channel: 'sms', Locale: 'sv' });
    const code = fake.verifyCodes.get('+46701234573')!;
    expect(await transport.check({ to: '+46701234573', code: code === '000000' ? '111111' : '000000' })).toBe(false);
    expect(await transport.check({ to: '+46701234573', code })).toBe(true);
    expect(await transport.check({ to: '+46701234573', code })).toBe(false);
    fake.failNext.push(503);
    await expect(transport.check({ to: '+46701234573', code })).rejects.toBeInstanceOf(SmsTransportError);
  });
});

describe('choosing the transport', () => {
  const base = { NODE_ENV: 'test' as const, NYCKEL_MASTER_KEY: undefined };
  test('the dev outbox outside production; none in production, so the SMS method is unavailable there', async () => {
    const dev = loadSettings({ ...base, NODE_ENV: 'development' });
    expect(createSmsTransport(dev, outboxStore())?.name).toBe('outbox');
    expect(createSmsTransport({ ...dev, production: true }, outboxStore())).toBeUndefined();
    const twilio = loadSettings({ NODE_ENV: 'test', TWILIO_ACCOUNT_SID: TWILIO_SID, TWILIO_AUTH_TOKEN: TWILIO_TOKEN, TWILIO_FROM: '+46700000001' });
    expect(createSmsTransport(twilio, outboxStore())?.name).toBe('twilio');
    const verify = loadSettings({
      NODE_ENV: 'test',
      TWILIO_ACCOUNT_SID: TWILIO_SID,
      TWILIO_AUTH_TOKEN: TWILIO_TOKEN,
      TWILIO_VERIFY_SERVICE_SID: TWILIO_VERIFY_SID,
    });
    expect(createSmsTransport(verify, outboxStore())?.name).toBe('twilio-verify');
  });

  test('without a transport the factor is not enrolled for anyone, and a warning is logged', async () => {
    const { logger, entries } = captureLogger();
    const settings = loadSettings({ NODE_ENV: 'test' });
    const prisma = database.db.prisma;
    const user = await prisma.user.create({
      data: { email: 'prod-sms@care.example', passwordHash: 'x', phones: { create: [{ e164: '+46701234574', verifiedAt: new Date() }] } },
    });
    const deps = {
      prisma,
      settings,
      counters: { prisma },
      sms: { transport: undefined, audit: new AuditLog(prisma), logger },
    } as unknown as FactorDependencies;
    const module = smsFactor(deps);
    expect(await module.isEnrolled(user)).toBe(false);
    expect(entries().some((e) => e.level === 40 && String(e.msg).includes('SMS method is unavailable'))).toBe(true);
    const withOutbox = smsFactor({ ...deps, sms: { ...deps.sms!, transport: createSmsTransport(settings, outboxStore()) } });
    expect(await withOutbox.isEnrolled(user)).toBe(true);
    expect(await withOutbox.targets(user)).toEqual([{ id: expect.any(String), masked: 'xxxx-xxxx74' }]);
  });

  test('the dev outbox pages exist for SMS alone (mail through a real transport)', () => {
    const deps = {
      production: false,
      prisma: database.db.prisma,
      box: testBox(),
      pages: {} as never,
      transport: { name: 'smtp' as const, send: async () => {} },
    };
    expect(devOutboxRoutes(deps)).toBeUndefined();
    expect(devOutboxRoutes({ ...deps, sms: true })).toBeDefined();
    expect(devOutboxRoutes({ ...deps, sms: true, production: true })).toBeUndefined();
  });
});

describe('reading typed numbers', () => {
  test('national numbers are read as the first allowed country; E.164 out; nonsense refused', () => {
    expect(parsePhone('070-123 45 72', 'SE')).toBe('+46701234572');
    expect(parsePhone('+46 (0)70 123 45 72', 'SE')).toBe('+46701234572');
    expect(parsePhone('20 12 34 56', 'DK')).toBe('+4520123456');
    expect(parsePhone('+358 40 1234567', 'SE')).toBe('+358401234567');
    for (const bad of ['', 'abc', '+46 12', '070 123 45 72 99 99', 'x@y.z', '0'.repeat(40)]) expect(parsePhone(bad, 'SE')).toBeUndefined();
    expect(countryOf('+4791234567')).toBe('NO');
    expect(countryOf('+12025550143')).toBe('US');
  });
});
