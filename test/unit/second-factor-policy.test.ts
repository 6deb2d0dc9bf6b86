import { describe, expect, test } from '@jest/globals';
import { parseClientsFile } from '../../src/clients/clients-file.ts';
import { ClientDirectory } from '../../src/clients/directory.ts';
import { loadSettings } from '../../src/config/settings.ts';
import type { FactorModule } from '../../src/factors/contract.ts';
import { FactorEngine } from '../../src/factors/engine.ts';
import { SecondFactorPolicy } from '../../src/factors/policy.ts';

/** Just enough of a module for the policy's questions: its id and channel (recovery codes also `ensure`). */
const moduleOf = (id: string, channel: FactorModule['channel']) => ({ id, channel, ensure: async () => [] }) as unknown as FactorModule;
const modules = new Map(
  [moduleOf('totp', 'app'), moduleOf('passkey', 'device'), moduleOf('email-code', 'email'), moduleOf('recovery-code', 'backup')].map((m) => [m.id, m]),
);

function policyWith(clientsYaml: string, env: Record<string, string> = {}) {
  const settings = loadSettings(env);
  const engine = new FactorEngine(undefined as never, modules, new ClientDirectory(parseClientsFile(clientsYaml, 'c.yaml')), settings);
  return new SecondFactorPolicy(engine, { recognise: async () => false }, async () => undefined);
}

const optional = `
clients:
  - { client_id: plain, name: P, token_endpoint_auth_method: none, redirect_uris: [https://p.example/cb] }
  - { client_id: codes, name: C, token_endpoint_auth_method: none, redirect_uris: [https://c.example/cb], mfa: { required: false, methods: [email-code, recovery-code] } }
`;
const oneRequires = `${optional}  - { client_id: strict, name: S, token_endpoint_auth_method: none, redirect_uris: [https://s.example/cb], mfa: { required: true } }
`;

describe('SecondFactorPolicy', () => {
  test('the last method may not be removed while the installation or some client requires a second factor', () => {
    expect(policyWith(optional).mayRemoveMethod(1)).toBe(true);
    expect(policyWith(oneRequires).mayRemoveMethod(1)).toBe(false);
    expect(policyWith(oneRequires).mayRemoveMethod(2)).toBe(true);
    expect(policyWith(optional, { NYCKEL_MFA_REQUIRED: 'true' }).mayRemoveMethod(1)).toBe(false);
  });

  test('recovery codes come with something that can be lost, at sign-in and on the account pages alike', () => {
    const policy = policyWith(optional);
    expect(policy.recoveryCodesOnEnrolment(undefined, modules.get('totp')!)?.id).toBe('recovery-code');
    expect(policy.recoveryCodesOnEnrolment('plain', modules.get('passkey')!)?.id).toBe('recovery-code');
    expect(policy.recoveryCodesOnEnrolment(undefined, modules.get('email-code')!)).toBeUndefined();
  });

  test('with an address or number, only a sign-in whose client lists recovery codes brings them', () => {
    const policy = policyWith(optional);
    expect(policy.recoveryCodesOnEnrolment('codes', modules.get('email-code')!)?.id).toBe('recovery-code');
    expect(policy.recoveryCodesOnEnrolment('plain', modules.get('email-code')!)).toBeUndefined();
  });
});
