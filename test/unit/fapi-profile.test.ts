import { describe, expect, test } from '@jest/globals';
import { ClientsFileError, parseClientsFile, toProviderMetadata } from '../../src/clients/clients-file.ts';

const key = '{ kty: EC, crv: P-256, x: f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU, y: x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0 }';

function problemsOf(text: string): string[] {
  try {
    parseClientsFile(text, 'clients.yaml', {});
  } catch (error) {
    expect(error).toBeInstanceOf(ClientsFileError);
    return (error as ClientsFileError).problems;
  }
  throw new Error('expected the file to be refused');
}

describe('security_profile: fapi2 in the clients file', () => {
  test('a conforming entry gets PAR and DPoP filled in; other clients keep their defaults', () => {
    const file = parseClientsFile(
      `
clients:
  - client_id: bank
    name: Bank
    security_profile: fapi2
    token_endpoint_auth_method: private_key_jwt
    jwks: { keys: [${key}] }
    redirect_uris: [https://bank.example/cb]
  - client_id: portal
    name: Portal
    client_secret: a-secret-of-sixteen-chars
    redirect_uris: [https://portal.example/cb]
  - client_id: pushed
    name: Pushed only
    client_secret: a-secret-of-sixteen-chars
    require_pushed_authorization_requests: true
    redirect_uris: [https://pushed.example/cb]
`,
      'clients.yaml',
    );
    const [bank, portal, pushed] = file.clients.map(toProviderMetadata);
    expect(bank).toMatchObject({
      token_endpoint_auth_method: 'private_key_jwt',
      dpop_bound_access_tokens: true,
      require_pushed_authorization_requests: true,
      response_types: ['code'],
    });
    expect(portal).toMatchObject({ dpop_bound_access_tokens: false, require_pushed_authorization_requests: false });
    expect(pushed).toMatchObject({ dpop_bound_access_tokens: false, require_pushed_authorization_requests: true });
  });

  test('an entry that breaks the profile is refused, each problem naming its field', () => {
    const problems = problemsOf(`
clients:
  - client_id: secret
    name: With a secret
    security_profile: fapi2
    client_secret: a-secret-of-sixteen-chars
    redirect_uris: [https://bank.example/cb]
  - client_id: public
    name: Public
    security_profile: fapi2
    token_endpoint_auth_method: none
    redirect_uris: [https://bank.example/cb]
  - client_id: loose
    name: Loose
    security_profile: fapi2
    token_endpoint_auth_method: private_key_jwt
    jwks: { keys: [${key}] }
    dpop_bound_access_tokens: false
    require_pushed_authorization_requests: false
    grant_types: [authorization_code, urn:ietf:params:oauth:grant-type:device_code]
    redirect_uris: [https://bank.example/cb]
  - client_id: other
    name: Other profile
    security_profile: fapi1
    client_secret: a-secret-of-sixteen-chars
    redirect_uris: [https://bank.example/cb]
`);
    expect(problems).toEqual([
      'clients[0] (client_id "secret").token_endpoint_auth_method: security_profile fapi2 needs token_endpoint_auth_method private_key_jwt, not client_secret_basic',
      'clients[1] (client_id "public").token_endpoint_auth_method: security_profile fapi2 needs token_endpoint_auth_method private_key_jwt, not none',
      'clients[2] (client_id "loose").dpop_bound_access_tokens: security_profile fapi2 needs dpop_bound_access_tokens true (or leave it out)',
      'clients[2] (client_id "loose").require_pushed_authorization_requests: security_profile fapi2 needs require_pushed_authorization_requests true (or leave it out)',
      'clients[2] (client_id "loose").grant_types: security_profile fapi2 allows only authorization_code, refresh_token and client_credentials, not urn:ietf:params:oauth:grant-type:device_code',
      'clients[3] (client_id "other").security_profile: Invalid input: expected "fapi2"',
    ]);
  });
});
