import { describe, expect, test } from '@jest/globals';
import { generate } from 'otplib';
import { newRecoveryCode, normaliseRecoveryCode } from '../../src/factors/recovery-code/index.ts';
import { matchingStep, newTotpSecret, otpauthUri, TOTP_OPTIONS, totpCode } from '../../src/factors/totp/otp.ts';

// RFC 4226 appendix D and RFC 6238 appendix B use the ASCII secret "12345678901234567890".
const RFC_SECRET = new TextEncoder().encode('12345678901234567890');
const RFC_SECRET_BASE32 = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';

describe('TOTP as Nyckel configures it', () => {
  test('the parameters every authenticator app understands', () => {
    expect(TOTP_OPTIONS).toEqual({ algorithm: 'sha1', digits: 6, period: 30 });
  });

  test.each([
    [59, '94287082'],
    [1111111109, '07081804'],
    [1111111111, '14050471'],
    [1234567890, '89005924'],
    [2000000000, '69279037'],
    [20000000000, '65353130'],
  ])('RFC 6238 SHA-1 vector at T=%d (8 digits) is %s', async (epoch, expected) => {
    expect(await generate({ secret: RFC_SECRET, epoch, ...TOTP_OPTIONS, digits: 8 })).toBe(expected);
    // Nyckel's own code (6 digits, base32 secret) is the same value, truncated.
    expect(await totpCode(RFC_SECRET_BASE32, epoch)).toBe(expected.slice(2));
  });

  test.each(['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489'].map((code, counter) => [counter, code]))(
    'RFC 4226 HOTP vector for counter %d is %s',
    async (counter, expected) => {
      expect(await generate({ strategy: 'hotp', secret: RFC_SECRET, counter: counter as number, algorithm: 'sha1', digits: 6 })).toBe(expected);
    },
  );

  test('a code matches its own time step and one step of drift either way, not two', async () => {
    // T=59 is step 1; its 6-digit code is 287082.
    expect(await matchingStep(RFC_SECRET_BASE32, '287082', 59)).toBe(1);
    expect(await matchingStep(RFC_SECRET_BASE32, '287082', 89)).toBe(1);
    expect(await matchingStep(RFC_SECRET_BASE32, '287082', 15)).toBe(1);
    expect(await matchingStep(RFC_SECRET_BASE32, '287082', 120)).toBeUndefined();
    expect(await matchingStep(RFC_SECRET_BASE32, '287083', 59)).toBeUndefined();
    expect(await matchingStep(RFC_SECRET_BASE32, '28708', 59)).toBeUndefined();
    expect(await matchingStep(RFC_SECRET_BASE32, '94287082', 59)).toBeUndefined();
  });

  test('new secrets are 20 random bytes in base32', () => {
    const a = newTotpSecret();
    expect(a).toMatch(/^[A-Z2-7]{32}$/);
    expect(newTotpSecret()).not.toBe(a);
  });

  test('the otpauth URI names issuer, account and every parameter', () => {
    expect(otpauthUri({ issuer: 'TDC Nyckel', account: 'anna@tdc.example', secret: RFC_SECRET_BASE32 })).toBe(
      `otpauth://totp/TDC%20Nyckel:anna%40tdc.example?secret=${RFC_SECRET_BASE32}&issuer=TDC%20Nyckel&algorithm=SHA1&digits=6&period=30`,
    );
  });
});

describe('recovery codes', () => {
  test('xxxxx-xxxxx from an alphabet without look-alikes; typing is forgiving about case, spaces and dashes', () => {
    const codes = Array.from({ length: 200 }, newRecoveryCode);
    for (const code of codes) expect(code).toMatch(/^[a-hjkmnp-tv-z2-9]{5}-[a-hjkmnp-tv-z2-9]{5}$/);
    expect(new Set(codes).size).toBe(codes.length);
    expect(normaliseRecoveryCode(' ABCDE 23456 ')).toBe('abcde23456');
    expect(normaliseRecoveryCode('abcde-23456')).toBe('abcde23456');
  });
});
