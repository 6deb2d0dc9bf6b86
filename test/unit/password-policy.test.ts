import { describe, expect, test } from '@jest/globals';
import { checkPassword } from '../../src/accounts/password-policy.ts';

describe('password policy (NIST 800-63B)', () => {
  test('length is what counts: 8 characters minimum, long passphrases welcome, no composition rules', () => {
    expect(checkPassword('short12')).toBe('too_short');
    expect(checkPassword('lowercase only words')).toBeUndefined();
    expect(checkPassword('x'.repeat(30) + 'y')).toBeUndefined();
    expect(checkPassword('a'.repeat(300))).toBe('too_long');
  });

  test('any Unicode, counted as characters people see', () => {
    expect(checkPassword('blåbärsskog')).toBeUndefined();
    // Seven user-perceived characters, ten UTF-16 code units: still too short.
    expect(checkPassword('å'.normalize('NFD').repeat(3) + 'bcde')).toBe('too_short');
    expect(checkPassword('🔑🔑🔑🔑🔑🔑🔑🔑')).toBe('common');
    expect(checkPassword('🔑🔒🔑🔒🔑🔒🔑🔒')).toBeUndefined();
  });

  test('common passwords and the account name are refused', () => {
    expect(checkPassword('password1')).toBe('common');
    expect(checkPassword('Password1')).toBe('common');
    expect(checkPassword('iloveyou123')).toBe('common');
    expect(checkPassword('aaaaaaaaaaaa')).toBe('common');
    expect(checkPassword('anna.svensson@scb.example', { email: 'Anna.Svensson@scb.example' })).toBe('contains_email');
    expect(checkPassword('anna.svensson', { email: 'anna.svensson@scb.example' })).toBe('contains_email');
  });
});
