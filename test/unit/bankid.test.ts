import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { loadSettings } from '../../src/config/settings.ts';
import { BankIdClient, BankIdError } from '../../src/factors/bankid/client.ts';
import { luhnValid, maskPersonalNumber, parsePersonalNumber } from '../../src/factors/bankid/personal-number.ts';
import { isMobileDevice } from '../../src/factors/bankid/device.ts';
import { autostartLink, qrPayload } from '../../src/factors/bankid/qr.ts';
import {
  DOC_QR_START_SECRET,
  DOC_QR_START_TOKEN,
  makeBankIdCertificates,
  personalNumberFor,
  startFakeBankId,
  TEST_PFX_PASSPHRASE,
  type BankIdCertificates,
  type FakeBankId,
} from '../support/bankid-fake.ts';

describe('BankID animated QR code', () => {
  test("BankID's documented test vectors: seconds 0 and 1", () => {
    expect(qrPayload(DOC_QR_START_TOKEN, DOC_QR_START_SECRET, 0)).toBe(
      'bankid.67df3917-fa0d-44e5-b327-edcc928297f8.0.dc69358e712458a66a7525beef148ae8526b1c71610eff2c16cdffb4cdac9bf8',
    );
    expect(qrPayload(DOC_QR_START_TOKEN, DOC_QR_START_SECRET, 1)).toBe(
      'bankid.67df3917-fa0d-44e5-b327-edcc928297f8.1.949d559bf23403952a94d103e67743126381eda00f0b3cbddbf7c96b1adcbce2',
    );
    // Whole seconds since the order was made.
    expect(qrPayload(DOC_QR_START_TOKEN, DOC_QR_START_SECRET, 1.9)).toBe(qrPayload(DOC_QR_START_TOKEN, DOC_QR_START_SECRET, 1));
  });

  test('the autostart link of "BankID on this device": the bankid:/// scheme on a computer, the universal link on a phone', () => {
    expect(autostartLink('46f6aa68-e2b1-4b5a-a8a4-1f6e4f1bcd7b', false)).toBe('bankid:///?autostarttoken=46f6aa68-e2b1-4b5a-a8a4-1f6e4f1bcd7b&redirect=null');
    expect(autostartLink('46f6aa68-e2b1-4b5a-a8a4-1f6e4f1bcd7b', true)).toBe(
      'https://app.bankid.com/?autostarttoken=46f6aa68-e2b1-4b5a-a8a4-1f6e4f1bcd7b&redirect=null',
    );
  });

  test('phones and tablets by their User-Agent', () => {
    const iphone = 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1';
    const android = 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36';
    const windows = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
    const mac = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15';
    expect([iphone, android].map(isMobileDevice)).toEqual([true, true]);
    expect([windows, mac, undefined, ''].map(isMobileDevice)).toEqual([false, false, false, false]);
  });
});

describe('Swedish personal identity numbers', () => {
  const today = new Date('2026-11-22T00:00:00Z');

  test('twelve digits, with or without a dash; ten digits get their century', () => {
    expect(parsePersonalNumber('19900101-2385', today)).toEqual({ ok: true, value: '199001012385' });
    expect(parsePersonalNumber('199001012385', today)).toEqual({ ok: true, value: '199001012385' });
    expect(parsePersonalNumber('900101-2385', today)).toEqual({ ok: true, value: '199001012385' });
    // 100 or older: a plus sign instead of the dash.
    expect(parsePersonalNumber('900101+2385', today)).toEqual({ ok: true, value: '189001012385' });
    // A coordination number (samordningsnummer): the day plus 60.
    const coordination = personalNumberFor('19900161', 238);
    expect(luhnValid(coordination.slice(2))).toBe(true);
    expect(parsePersonalNumber(`${coordination.slice(0, 8)}-${coordination.slice(8)}`, today)).toEqual({ ok: true, value: coordination });
    expect(parsePersonalNumber('19900192-2380', today)).toMatchObject({ ok: false });
  });

  test('a wrong check digit, a date that does not exist, or garbage is refused with the reason', () => {
    expect(parsePersonalNumber('19900101-2386', today)).toEqual({ ok: false, problem: 'check_digit' });
    expect(parsePersonalNumber('19901301-2385', today)).toEqual({ ok: false, problem: 'date' });
    expect(parsePersonalNumber('19900230-2385', today)).toEqual({ ok: false, problem: 'date' });
    expect(parsePersonalNumber('1990-01-01', today)).toEqual({ ok: false, problem: 'format' });
    expect(parsePersonalNumber('19900101+2385', today)).toEqual({ ok: false, problem: 'format' });
    expect(parsePersonalNumber('', today)).toEqual({ ok: false, problem: 'format' });
  });

  test('masked: the century and the last two digits only', () => {
    expect(maskPersonalNumber('199001012385')).toBe('19xxxxxx-xx85');
  });
});

describe('BankID settings', () => {
  test('not configured: no BankID; configured: the URL needs a CA and a certificate', () => {
    expect(loadSettings({}).bankid).toBeUndefined();
    expect(() => loadSettings({ NYCKEL_BANKID_URL: 'https://appapi2.test.bankid.com/rp/v6.0' })).toThrow(/NYCKEL_BANKID_CA: required/);
    expect(() => loadSettings({ NYCKEL_BANKID_URL: 'https://appapi2.test.bankid.com/rp/v6.0', NYCKEL_BANKID_CA: '/ca.pem' })).toThrow(/NYCKEL_BANKID_PFX/);
    expect(() => loadSettings({ NYCKEL_BANKID_URL: 'http://appapi2.test.bankid.com/rp/v6.0' })).toThrow(/NYCKEL_BANKID_URL: must be an https/);
    const settings = loadSettings({
      NYCKEL_BANKID_URL: 'https://appapi2.test.bankid.com/rp/v6.0/',
      NYCKEL_BANKID_PFX: '/etc/FPTestcert5_20240610.p12',
      NYCKEL_BANKID_PFX_PASSPHRASE: 'qwerty123',
      NYCKEL_BANKID_CA: '/etc/test-ca.pem',
    });
    expect(settings.bankid).toEqual({
      url: 'https://appapi2.test.bankid.com/rp/v6.0',
      pfx: '/etc/FPTestcert5_20240610.p12',
      passphrase: 'qwerty123',
      cert: undefined,
      key: undefined,
      ca: '/etc/test-ca.pem',
      timeoutMs: 5000,
      requirePin: false,
    });
  });
});

describe('BankID RP API client over mutual TLS', () => {
  let certs: BankIdCertificates;
  let fake: FakeBankId;
  beforeAll(async () => {
    certs = makeBankIdCertificates();
    fake = await startFakeBankId(certs);
  });
  afterAll(async () => {
    await fake?.close();
  });

  test('auth, collect through the hint codes to complete, and cancel, with the PKCS#12 certificate', async () => {
    const client = new BankIdClient({ url: fake.url, pfx: certs.pfx, passphrase: TEST_PFX_PASSPHRASE, ca: certs.ca, timeoutMs: 3000 });
    try {
      fake.state.nextScript = { hints: ['outstandingTransaction', 'started', 'userSign'], end: { complete: '199001012385' } };
      const order = await client.auth({ endUserIp: '192.0.2.10', userVisibleData: 'Sign in to **Aiai**' });
      expect(order).toMatchObject({ qrStartToken: DOC_QR_START_TOKEN, qrStartSecret: DOC_QR_START_SECRET });
      const sent = fake.orders.get(order.orderRef)!;
      expect(sent.endUserIp).toBe('192.0.2.10');
      expect(sent.clientCn).toBe('FP Testcert 5');
      expect(Buffer.from(String(sent.body.userVisibleData), 'base64').toString('utf8')).toBe('Sign in to **Aiai**');
      const hints = [];
      for (let i = 0; i < 3; i++) hints.push(await client.collect(order.orderRef));
      expect(hints.map((h) => ('hintCode' in h ? h.hintCode : undefined))).toEqual(['outstandingTransaction', 'started', 'userSign']);
      const done = await client.collect(order.orderRef);
      expect(done.status).toBe('complete');
      expect(done.status === 'complete' && done.completionData.user.personalNumber).toBe('199001012385');

      const second = await client.auth({ endUserIp: '192.0.2.10' });
      await client.cancel(second.orderRef);
      expect(fake.orders.get(second.orderRef)!.cancelled).toBe(true);
      expect(await client.collect(second.orderRef)).toMatchObject({ status: 'failed', hintCode: 'cancelled' });
    } finally {
      client.close();
    }
  });

  test('with a PEM certificate and key as well', async () => {
    const client = new BankIdClient({ url: fake.url, cert: certs.cert, key: certs.key, ca: certs.ca, timeoutMs: 3000 });
    try {
      fake.state.nextScript = { hints: [], end: { failed: 'userCancel' } };
      const order = await client.auth({ endUserIp: '192.0.2.11' });
      expect(await client.collect(order.orderRef)).toMatchObject({ status: 'failed', hintCode: 'userCancel' });
    } finally {
      client.close();
    }
  });

  test('no client certificate, an unknown CA, an outage, BankID errors: typed errors, never a hang', async () => {
    const noCert = new BankIdClient({ url: fake.url, ca: certs.ca, timeoutMs: 3000 });
    await expect(noCert.auth({ endUserIp: '192.0.2.12' })).rejects.toMatchObject({ name: 'BankIdError', kind: 'unreachable' });
    noCert.close();
    // The server's certificate is checked against the configured CA only.
    const wrongCa = new BankIdClient({ url: fake.url, pfx: certs.pfx, passphrase: TEST_PFX_PASSPHRASE, ca: certs.cert, timeoutMs: 3000 });
    await expect(wrongCa.auth({ endUserIp: '192.0.2.12' })).rejects.toBeInstanceOf(BankIdError);
    wrongCa.close();

    const client = new BankIdClient({ url: fake.url, pfx: certs.pfx, passphrase: TEST_PFX_PASSPHRASE, ca: certs.ca, timeoutMs: 3000 });
    try {
      await expect(client.collect('no-such-order')).rejects.toMatchObject({ kind: 'refused', errorCode: 'invalidParameters' });
      fake.state.failCollect = true;
      await expect(client.collect('x')).rejects.toMatchObject({ kind: 'refused', errorCode: 'internalError' });
      fake.state.failCollect = false;
      fake.state.down = true;
      await expect(client.auth({ endUserIp: '192.0.2.12' })).rejects.toMatchObject({ kind: 'unreachable', errorCode: 'http_503' });
    } finally {
      fake.state.down = false;
      client.close();
    }
    // Nothing listening: unreachable.
    const closed = new BankIdClient({ url: 'https://127.0.0.1:9/rp/v6.0', pfx: certs.pfx, passphrase: TEST_PFX_PASSPHRASE, ca: certs.ca, timeoutMs: 1000 });
    await expect(closed.auth({ endUserIp: '192.0.2.12' })).rejects.toMatchObject({ kind: 'unreachable' });
    closed.close();
  });
});
