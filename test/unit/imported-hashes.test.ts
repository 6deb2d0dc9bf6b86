import { describe, expect, test } from '@jest/globals';
import { keycloakRealmRows } from '../../src/accounts/import-keycloak.ts';
import { totpSecretSchema } from '../../src/accounts/import-totp.ts';
import { keycloakCredential } from '../../src/accounts/password-hashes/keycloak.ts';
import { readPasswordHash } from '../../src/accounts/password-hashes/registry.ts';
import { HashFormatError } from '../../src/accounts/password-hashes/types.ts';
import { matchingStep, totpCode } from '../../src/factors/totp/otp.ts';

/** Imported hashes and secrets that are hostile or unusual: refused clearly at import, never a crash at sign-in. */
describe('imported password hashes', () => {
  test('a PBKDF2 hash longer than 64 bytes is refused (its length would multiply the work of every sign-in)', () => {
    const long = Buffer.alloc(1024 * 1024, 7).toString('base64');
    expect(() => readPasswordHash(`pbkdf2_sha256$10000$c2FsdHNhbHQ$${long}`)).toThrow(HashFormatError);
    expect(() => readPasswordHash(`pbkdf2_sha256$10000$c2FsdHNhbHQ$${Buffer.alloc(32, 7).toString('base64')}`)).not.toThrow();
  });

  test('a scrypt hash longer than 64 bytes is refused', () => {
    const salt = Buffer.alloc(16, 1).toString('base64').replace(/=+$/, '');
    const long = Buffer.alloc(4096, 2).toString('base64').replace(/=+$/, '');
    expect(() => readPasswordHash(`$scrypt$ln=15,r=8,p=1$${salt}$${long}`)).toThrow('16 to 64 bytes');
  });

  test('a Keycloak algorithm that is an inherited name of a plain object ("constructor") is not supported', () => {
    const credential = { secretData: { value: Buffer.alloc(64).toString('base64'), salt: Buffer.alloc(16).toString('base64') } };
    expect(() => keycloakCredential({ ...credential, credentialData: { algorithm: 'constructor', hashIterations: 27500 } })).toThrow('is not supported');
    expect(() => keycloakCredential({ ...credential, credentialData: { algorithm: 'pbkdf2-sha256', hashIterations: 27500 } })).not.toThrow();
  });

  test('a null credential in a Keycloak export is listed as not imported, and the user is still read', () => {
    const [row] = keycloakRealmRows(JSON.stringify({ users: [{ username: 'kari', email: 'kari@example.test', credentials: [null] }] }));
    expect(row.fields.email).toBe('kari@example.test');
    expect(row.notTaken).toEqual(expect.arrayContaining(['not imported: a credential that is not an object']));
  });
});

describe('imported authenticator-app secrets', () => {
  test("a 10-byte (80-bit) secret, Google Authenticator's, signs in", async () => {
    const secret = 'JBSWY3DPEHPK3PXP';
    expect(totpSecretSchema.safeParse(secret).success).toBe(true);
    const now = 1_800_000_000;
    expect(await matchingStep(secret, await totpCode(secret, now), now)).toBe(Math.floor(now / 30));
  });

  test('a secret otplib cannot use matches no code instead of throwing; one over 64 bytes is refused at import', async () => {
    expect(await matchingStep('JBSWY3DP', '123456')).toBeUndefined();
    expect(totpSecretSchema.safeParse('A'.repeat(104)).success).toBe(false);
  });
});
