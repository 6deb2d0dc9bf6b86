import crypto from 'node:crypto';
import { describe, expect, test } from '@jest/globals';
import {
  approximateIp,
  browserSummary,
  canonical,
  derivePinKey,
  isTrivialPin,
  pinProof,
  qrCode,
  verifySignature,
  type PublicKeyJwk,
} from '../../src/factors/push/protocol.ts';

describe('Nyckel Authenticator protocol', () => {
  test('trivial PINs: too short, not digits, one digit repeated, runs up or down (also across 9 → 0)', () => {
    for (const pin of ['', '123', '12a4', '0000', '7777777', '1234', '4567', '6789', '7890', '9876', '3210', '0987', '123456789012', '1234567890123'])
      expect([pin, isTrivialPin(pin)]).toEqual([pin, true]);
    for (const pin of ['2580', '4711', '1357', '1243', '0001', '112233', '9081']) expect([pin, isTrivialPin(pin)]).toEqual([pin, false]);
  });

  test('the QR code is RFC 4226 dynamic truncation of HMAC-SHA256 over the text and the PIN proof of it, 8 digits; it depends on secret, PIN and text', () => {
    // RFC 4226's worked example truncates the HMAC-SHA-1 of its appendix; here the same steps over SHA-256.
    const secrets = { qrSecret: Buffer.from('12345678901234567890123456789012'), pinKey: derivePinKey('2580', Buffer.alloc(16, 1)) };
    const text = 'nyckel-qr-v2:abc:Client';
    const proof = crypto.createHmac('sha256', secrets.pinKey).update(`nyckel-pin-v1\nqr\n${text}`).digest('base64url');
    const mac = crypto.createHmac('sha256', secrets.qrSecret).update(`${text}\n${proof}`).digest();
    const offset = mac[31] & 0xf;
    const expected = String((mac.readUInt32BE(offset) & 0x7fffffff) % 1e8).padStart(8, '0');
    expect(qrCode(secrets, text)).toBe(expected);
    expect(qrCode(secrets, 'nyckel-qr-v2:abd:Client')).not.toBe(expected);
    expect(qrCode({ ...secrets, pinKey: derivePinKey('2581', Buffer.alloc(16, 1)) }, text)).not.toBe(expected);
    expect(qrCode({ ...secrets, qrSecret: crypto.randomBytes(32) }, text)).toMatch(/^\d{8}$/);
  });

  test('signatures: WebCrypto raw r||s over the canonical string; anything else is refused', async () => {
    const keys = await crypto.webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
    const jwk = (await crypto.webcrypto.subtle.exportKey('jwk', keys.publicKey)) as PublicKeyJwk;
    const fields = {
      challengeId: crypto.randomUUID(),
      deviceId: crypto.randomUUID(),
      decision: 'approve' as const,
      number: '42',
      notMe: false,
      pinProof: 'proof',
    };
    const signature = Buffer.from(
      await crypto.webcrypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, keys.privateKey, Buffer.from(canonical.approval(fields))),
    ).toString('base64url');
    expect(verifySignature(jwk, canonical.approval(fields), signature)).toBe(true);
    expect(verifySignature(jwk, canonical.approval({ ...fields, number: '43' }), signature)).toBe(false);
    expect(verifySignature(jwk, canonical.approval({ ...fields, notMe: true }), signature)).toBe(false);
    expect(verifySignature(jwk, canonical.approval(fields), signature.slice(2))).toBe(false);
    expect(verifySignature({ ...jwk, x: jwk.y }, canonical.approval(fields), signature)).toBe(false);
  });

  test('the PIN proof is bound to the PIN, the salt, the purpose and the request', () => {
    const salt = crypto.randomBytes(16);
    const key = derivePinKey('2580', salt);
    expect(pinProof(key, 'approve', 'a')).toBe(pinProof(derivePinKey('2580', salt), 'approve', 'a'));
    expect(pinProof(key, 'approve', 'a')).not.toBe(pinProof(derivePinKey('2581', salt), 'approve', 'a'));
    expect(pinProof(key, 'approve', 'a')).not.toBe(pinProof(derivePinKey('2580', crypto.randomBytes(16)), 'approve', 'a'));
    expect(pinProof(key, 'approve', 'a')).not.toBe(pinProof(key, 'transfer', 'a'));
    expect(pinProof(key, 'approve', 'a')).not.toBe(pinProof(key, 'approve', 'b'));
  });

  test('what the phone is told about the requesting browser: approximate address, browser and system', () => {
    expect(approximateIp('203.0.113.77')).toBe('203.0.113.0/24');
    expect(approximateIp('::ffff:198.51.100.9')).toBe('198.51.100.0/24');
    expect(approximateIp('2001:db8:1234:5678::1')).toBe('2001:db8:1234::/48');
    expect(browserSummary('Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0')).toBe('Firefox / Windows');
    expect(browserSummary('Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15')).toBe(
      'Safari / macOS',
    );
    expect(browserSummary('Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36')).toBe('Chrome / Android');
    expect(browserSummary(undefined)).toBe('Browser');
  });
});
