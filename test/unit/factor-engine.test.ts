import { describe, expect, test } from '@jest/globals';
import { factorStrength, loginOutcome, passwordFactor, type VerifiedFactor } from '../../src/factors/sign-ins.ts';
import { policyFor, requestsSecondFactor } from '../../src/factors/policy.ts';
import { formatPhone, maskEmail, maskPhone } from '../../src/factors/shared/mask.ts';
import { parseClientsFile } from '../../src/clients/clients-file.ts';
import { loadSettings } from '../../src/config/settings.ts';

const emailCode: VerifiedFactor = { factor: 'email-code', channel: 'email', amr: ['otp'], at: '', userId: 'u' };
const emailLink: VerifiedFactor = { factor: 'email-link', channel: 'email', amr: ['otp'], at: '', userId: 'u' };

describe('acr and amr for what was verified', () => {
  test('a password alone is one factor', () => {
    expect(loginOutcome('u', [passwordFactor('u')])).toEqual({ accountId: 'u', acr: 'urn:nyckel:acr:password', amr: ['pwd'] });
  });

  test('password and an email code are two factors', () => {
    expect(loginOutcome('u', [passwordFactor('u'), emailCode])).toEqual({ accountId: 'u', acr: 'urn:nyckel:acr:mfa', amr: ['pwd', 'otp', 'mfa'] });
  });

  test('two factors of one channel count once: an email code cannot be both factors', () => {
    expect(factorStrength([emailCode, emailLink])).toBe(1);
    expect(loginOutcome('u', [emailCode, emailLink]).acr).toBe('urn:nyckel:acr:password');
    expect(loginOutcome('u', [emailCode, emailLink]).amr).not.toContain('mfa');
  });

  test('a passkey with user verification is two factors in one step', () => {
    const passkey: VerifiedFactor = { factor: 'passkey', channel: 'device', amr: ['swk', 'user'], at: '', userId: 'u', multiFactor: true };
    expect(factorStrength([passkey])).toBe(2);
    expect(loginOutcome('u', [passkey])).toEqual({ accountId: 'u', acr: 'urn:nyckel:acr:mfa', amr: ['swk', 'user', 'mfa'] });
  });

  test('a factor through "Forgot your device?" says so in acr', () => {
    expect(loginOutcome('u', [passwordFactor('u'), { ...emailCode, fallback: true }]).acr).toBe('urn:nyckel:acr:mfa-fallback');
  });
});

describe('policy', () => {
  const settings = loadSettings({ NYCKEL_MFA_REQUIRED: 'true', NYCKEL_MFA_METHODS: 'totp,email-code', NYCKEL_REMEMBER_DAYS: '7' });
  const file = parseClientsFile(
    `
clients:
  - { client_id: strict, name: S, token_endpoint_auth_method: none, redirect_uris: [https://s.example/cb], mfa: { required: true, methods: [email-link], remember_days: 0 } }
  - { client_id: plain, name: P, token_endpoint_auth_method: none, redirect_uris: [https://p.example/cb] }
`,
    'c.yaml',
  );

  test('the client’s mfa block wins; a client without one gets the environment defaults', () => {
    expect(policyFor(file.clients[0], settings.mfa)).toMatchObject({ required: true, methods: ['email-link'], rememberDays: 0 });
    expect(policyFor(file.clients[1], settings.mfa)).toMatchObject({ required: true, methods: ['totp', 'email-code'], rememberDays: 7 });
  });

  test('step-up by acr_values or an essential acr claim', () => {
    expect(requestsSecondFactor({ acr_values: 'urn:nyckel:acr:mfa' })).toBe(true);
    expect(requestsSecondFactor({ acr_values: 'urn:nyckel:acr:password' })).toBe(false);
    expect(requestsSecondFactor({ claims: JSON.stringify({ id_token: { acr: { essential: true, values: ['urn:nyckel:acr:mfa'] } } }) })).toBe(true);
    expect(requestsSecondFactor({ claims: '{not json' })).toBe(false);
  });
});

describe('masking', () => {
  test('addresses as IDEP.WEB shows them', () => {
    expect(maskEmail('Maria.Lundberge@Scb.se')).toBe('Ma…ge@Sc…se');
    expect(maskEmail('al@x.se')).toBe('a…@x…e');
    expect(maskEmail('åsa.öberg@företag.se')).toBe('ås…rg@fö…se');
  });

  test('numbers as Aiai shows them', () => {
    expect(maskPhone('+46701234572')).toBe('xxxx-xxxx72');
  });

  test('Danish numbers in pairs, as Danes write them; others in their international grouping', () => {
    expect(maskPhone('+4520123478')).toBe('+45 xx xx xx 78');
    // Not a number the metadata can format, still eight digits in pairs.
    expect(maskPhone('+4512345678')).toBe('+45 xx xx xx 78');
    expect(maskPhone('+4791234567')).toBe('+47 xx xx xx 67');
    expect(maskPhone('+358401234567')).toBe('+358 xx xxxxx67');
    expect(maskPhone('not a number 12')).toBe('xxxx-xxxx12');
  });

  test('the account page writes a number as its country does', () => {
    expect(formatPhone('+4520123478')).toBe('+45 20 12 34 78');
    expect(formatPhone('+4512345678')).toBe('+45 12 34 56 78');
    expect(formatPhone('+46701234572')).toBe('+46 70 123 45 72');
  });
});
