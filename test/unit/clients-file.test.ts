import { describe, expect, test } from '@jest/globals';
import { ClientsFileError, DEVICE_CODE_GRANT, parseClientsFile, toProviderMetadata, usesDeviceFlow } from '../../src/clients/clients-file.ts';
import { withKnownMethods } from '../../src/factors/installed-methods.ts';
import { Factors } from '../../src/factors/registry.ts';

function problemsOf(text: string, file = 'clients.yaml', env: NodeJS.ProcessEnv = {}): string[] {
  try {
    // As Nyckel and `nyckel clients check` read it: parsed, then its methods checked against the installed factors.
    withKnownMethods(parseClientsFile(text, file, env), file, new Factors());
  } catch (error) {
    expect(error).toBeInstanceOf(ClientsFileError);
    expect((error as Error).message).toContain(file);
    return (error as ClientsFileError).problems;
  }
  throw new Error('expected the file to be refused');
}

describe('clients file', () => {
  test('a valid YAML file with defaults filled in and secrets from the environment', () => {
    const file = parseClientsFile(
      `
clients:
  - client_id: portal
    name: Portal
    redirect_uris: [https://portal.example/cb]
    client_secret: \${PORTAL_SECRET}
  - client_id: demo
    name: Demo
    token_endpoint_auth_method: none
    redirect_uris: ["\${BASE:-http://localhost:3000}/cb"]
    mfa: { required: true, methods: [totp, email-code], remember_days: 20 }
`,
      'clients.yaml',
      { PORTAL_SECRET: 'a-secret-of-sixteen-chars' },
    );
    expect(file.clients[0]).toMatchObject({
      client_secret: 'a-secret-of-sixteen-chars',
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'client_secret_basic',
      first_party: false,
      id_token_signed_response_alg: 'RS256',
    });
    expect(file.clients[1].redirect_uris).toEqual(['http://localhost:3000/cb']);
    expect(file.clients[1].mfa).toMatchObject({ required: true, methods: ['totp', 'email-code'], remember_days: 20, forgot_device_email: false });
  });

  test('JSON works too', () => {
    const file = parseClientsFile(
      JSON.stringify({ clients: [{ client_id: 'j', name: 'J', token_endpoint_auth_method: 'none', redirect_uris: ['https://j.example/cb'] }] }),
      'clients.json',
    );
    expect(file.clients).toHaveLength(1);
  });

  test('every problem is reported with its path and the client it belongs to', () => {
    const problems = problemsOf(`
clients:
  - client_id: ok
    name: Fine
    token_endpoint_auth_method: none
    redirect_uris: [https://fine.example/cb]
  - client_id: portal
    name: Portal
    redirect_uris: [http://portal.example/cb, "not a url"]
    client_secret: \${MISSING_SECRET}
    scopes: [openid, payroll]
    colour: blue
`);
    expect(problems).toEqual(
      expect.arrayContaining([
        'clients[1].client_secret: environment variable MISSING_SECRET is not set',
        'clients[1] (client_id "portal").redirect_uris[0]: must use https (http is allowed only for localhost)',
        'clients[1] (client_id "portal").redirect_uris[1]: is not an absolute URL',
        'clients[1] (client_id "portal"): Unrecognized key: "colour"',
      ]),
    );
    expect(problems.some((p) => p.startsWith('clients[1] (client_id "portal").scopes[1]: "payroll"'))).toBe(true);
  });

  test('rules between fields: public clients, secrets, grants, duplicates', () => {
    const problems = problemsOf(`
clients:
  - client_id: a
    name: A
    token_endpoint_auth_method: none
    client_secret: a-secret-of-sixteen-chars
    redirect_uris: [https://a.example/cb]
  - client_id: a
    name: Again
    redirect_uris: [https://a.example/cb]
  - client_id: m
    name: Machine
    token_endpoint_auth_method: none
    grant_types: [client_credentials]
`);
    expect(problems).toEqual(
      expect.arrayContaining([
        'clients[0] (client_id "a").client_secret: must not be set for a public client (token_endpoint_auth_method: none)',
        'clients[1] (client_id "a").client_id: duplicates clients[0]',
        'clients[1] (client_id "a").client_secret: is required for client_secret_basic',
        'clients[2] (client_id "m").grant_types: client_credentials needs a confidential client',
      ]),
    );
  });

  test('private_key_jwt: public keys inline or a jwks_uri, one of them, and no secret', () => {
    const key = '{ kty: EC, crv: P-256, x: f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU, y: x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0 }';
    const problems = problemsOf(`
clients:
  - client_id: both
    name: Both
    token_endpoint_auth_method: private_key_jwt
    grant_types: [client_credentials]
    jwks: { keys: [${key}] }
    jwks_uri: https://both.example/jwks
  - client_id: neither
    name: Neither
    token_endpoint_auth_method: private_key_jwt
    grant_types: [client_credentials]
    client_secret: a-secret-of-sixteen-chars
  - client_id: private
    name: Private
    token_endpoint_auth_method: private_key_jwt
    grant_types: [client_credentials]
    jwks: { keys: [{ kty: EC, crv: P-256, x: a, y: b, d: c }] }
  - client_id: plain
    name: Plain uri
    token_endpoint_auth_method: private_key_jwt
    grant_types: [client_credentials]
    jwks_uri: http://keys.example/jwks
  - client_id: secret-with-keys
    name: Secret with keys
    grant_types: [client_credentials]
    client_secret: a-secret-of-sixteen-chars
    jwks_uri: https://keys.example/jwks
`);
    expect(problems).toEqual([
      'clients[0] (client_id "both").jwks_uri: must not be set together with jwks (choose one)',
      'clients[1] (client_id "neither").jwks: or jwks_uri is required for private_key_jwt',
      'clients[1] (client_id "neither").client_secret: must not be set for private_key_jwt',
      'clients[2] (client_id "private").jwks.keys[0]: must be a public key (it has a private member such as "d")',
      'clients[3] (client_id "plain").jwks_uri: must use https (http is allowed only for localhost)',
      'clients[4] (client_id "secret-with-keys").jwks_uri: is used only with token_endpoint_auth_method: private_key_jwt',
    ]);
    const valid = parseClientsFile(
      `clients:\n  - { client_id: k, name: K, token_endpoint_auth_method: private_key_jwt, grant_types: [client_credentials], jwks: { keys: [${key}] } }\n`,
      'clients.yaml',
    );
    expect(toProviderMetadata(valid.clients[0])).toMatchObject({
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [expect.objectContaining({ kty: 'EC' })] },
    });
    expect(toProviderMetadata(valid.clients[0])).not.toHaveProperty('client_secret');
  });

  test('dpop_bound_access_tokens reaches oidc-provider, false unless set; anything but a boolean is refused', () => {
    const parsed = parseClientsFile(
      `clients:
  - { client_id: app, name: App, token_endpoint_auth_method: none, redirect_uris: [https://app.example/cb], dpop_bound_access_tokens: true }
  - { client_id: web, name: Web, token_endpoint_auth_method: none, redirect_uris: [https://web.example/cb] }
`,
      'clients.yaml',
    );
    expect(toProviderMetadata(parsed.clients[0])).toMatchObject({ dpop_bound_access_tokens: true });
    expect(toProviderMetadata(parsed.clients[1])).toMatchObject({ dpop_bound_access_tokens: false });
    expect(
      problemsOf(
        `clients:\n  - { client_id: x, name: X, token_endpoint_auth_method: none, redirect_uris: [https://x.example/cb], dpop_bound_access_tokens: yes please }\n`,
      ),
    ).toEqual([expect.stringMatching(/^clients\[0\] \(client_id "x"\)\.dpop_bound_access_tokens: /)]);
  });

  test('the device grant: no redirect URIs needed, refresh tokens allowed with it; the device endpoints only when a client uses it', () => {
    const parsed = parseClientsFile(
      `clients:
  - { client_id: tv, name: TV, token_endpoint_auth_method: none, grant_types: ['${DEVICE_CODE_GRANT}', refresh_token] }
  - { client_id: web, name: Web, token_endpoint_auth_method: none, redirect_uris: [https://web.example/cb] }
`,
      'clients.yaml',
    );
    expect(toProviderMetadata(parsed.clients[0])).toMatchObject({ grant_types: [DEVICE_CODE_GRANT, 'refresh_token'], redirect_uris: [], response_types: [] });
    expect(usesDeviceFlow(parsed)).toBe(true);
    expect(usesDeviceFlow({ clients: parsed.clients.slice(1) })).toBe(false);
    expect(problemsOf(`clients:\n  - { client_id: x, name: X, token_endpoint_auth_method: none, grant_types: [refresh_token] }\n`)).toEqual([
      `clients[0] (client_id "x").grant_types: refresh_token needs authorization_code or ${DEVICE_CODE_GRANT}`,
    ]);
  });

  test('a YAML syntax error and an unknown factor are explained', () => {
    expect(problemsOf('clients: [ { client_id: x')[0]).toMatch(/^not valid YAML/);
    const problems = problemsOf(`
clients:
  - client_id: x
    name: X
    token_endpoint_auth_method: none
    redirect_uris: [https://x.example/cb]
    mfa: { methods: [carrier-pigeon] }
`);
    expect(problems[0]).toMatch(/^clients\[0\] \(client_id "x"\)\.mfa\.methods\[0\]: unknown method carrier-pigeon; installed: email-link, /);
  });

  test('an invalid JSON file is refused', () => {
    expect(problemsOf('{ "clients": [', 'clients.json')[0]).toMatch(/^not valid JSON/);
  });
});
