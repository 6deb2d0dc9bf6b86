import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { parseClientsFile, type ClientsFile } from '../../src/clients/clients-file.ts';
import { loadSettings, type Settings } from '../../src/config/settings.ts';
import { newMasterKey } from '../../src/security/crypto.ts';
import { startNyckel, type Nyckel } from '../../src/nyckel.ts';
import { freshDatabase } from './database.ts';
import { registerMasterKey } from './mail.ts';
import { freshRedisPrefix, redisTestUrl, testUsesRedis } from './redis.ts';
import type { MailTransport } from '../../src/delivery/transport.ts';
import type { NyckelOptions } from '../../src/nyckel.ts';

export const testClientsYaml = `
clients:
  - client_id: web
    name: Statistics portal
    redirect_uris: [http://localhost:4000/cb]
    post_logout_redirect_uris: [http://localhost:4000/bye]
    token_endpoint_auth_method: client_secret_basic
    client_secret: web-secret-web-secret-0001
    scopes: [openid, profile, email, offline_access, reports:read]
  - client_id: spa
    name: Care portal
    first_party: true
    token_endpoint_auth_method: none
    redirect_uris: [http://localhost:4000/spa-cb]
    post_logout_redirect_uris: [http://localhost:4000/spa-bye]
    scopes: [openid, profile, email, offline_access]
  - client_id: es256
    name: Legacy app
    first_party: true
    token_endpoint_auth_method: client_secret_post
    client_secret: legacy-secret-legacy-0001
    id_token_signed_response_alg: ES256
    redirect_uris: [http://localhost:4000/legacy-cb]
  - client_id: machine
    name: Reporting job
    grant_types: [client_credentials]
    token_endpoint_auth_method: client_secret_basic
    client_secret: machine-secret-machine-01
    scopes: [reports:read, reports:write]
  - client_id: helpdesk
    name: Help desk
    grant_types: [client_credentials]
    token_endpoint_auth_method: client_secret_basic
    client_secret: helpdesk-secret-helpdesk-01
    scopes: [nyckel:admin]
  - client_id: reports
    name: Reports exporter
    grant_types: [client_credentials]
    token_endpoint_auth_method: client_secret_basic
    client_secret: reports-secret-reports-0001
    scopes: [reports:read]
  - client_id: selfservice
    name: Customer self-service
    first_party: true
    token_endpoint_auth_method: none
    redirect_uris: [http://localhost:4000/selfservice-cb]
    scopes: [openid, email, offline_access]
    mfa: { required: true, methods: [email-code, email-link], remember_days: 20 }
  - client_id: idep
    name: IDEP.WEB
    first_party: true
    token_endpoint_auth_method: none
    redirect_uris: [http://localhost:4000/idep-cb]
    scopes: [openid, email]
    mfa: { required: true, methods: [email-link], remember_days: 20 }
  - client_id: authapp
    name: Authenticator portal
    first_party: true
    token_endpoint_auth_method: none
    redirect_uris: [http://localhost:4000/authapp-cb]
    scopes: [openid, email]
    mfa: { required: true, methods: [totp, recovery-code, email-code] }
  - client_id: care
    name: Care portal
    first_party: true
    token_endpoint_auth_method: none
    redirect_uris: [http://localhost:4000/care-cb]
    scopes: [openid, email]
    mfa: { required: true, methods: [sms, email-code] }
  - client_id: eid
    name: Aiai
    first_party: true
    token_endpoint_auth_method: none
    redirect_uris: [http://localhost:4000/eid-cb]
    scopes: [openid, email]
    mfa: { required: true, methods: [bankid, sms] }
  - client_id: keys
    name: Key portal
    first_party: true
    token_endpoint_auth_method: none
    redirect_uris: [http://localhost:4000/keys-cb]
    scopes: [openid, email]
    mfa: { required: true, methods: [passkey, email-code], passwordless: [passkey] }
  - client_id: phone
    name: Phone portal
    first_party: true
    token_endpoint_auth_method: none
    redirect_uris: [http://localhost:4000/phone-cb]
    scopes: [openid, email]
    mfa: { required: true, methods: [push, app-qr, email-code] }
resources:
  - identifier: https://api.example.test/reports
    name: Reports API
    scopes: [reports:read, reports:write]
    access_token_ttl: 600
`;

/** Adds `apponly` ("App portal"): a second factor required, and only an authenticator app accepted. */
export function withAppOnlyClient(yaml: string): string {
  return yaml.replace(
    'resources:',
    `  - client_id: apponly
    name: App portal
    first_party: true
    token_endpoint_auth_method: none
    redirect_uris: [http://localhost:4000/apponly-cb]
    scopes: [openid, email]
    mfa: { required: true, methods: [totp] }
resources:`,
  );
}

export interface TestNyckel extends Nyckel {
  dataDir: string;
  stop(): Promise<void>;
}

export const TEST_PASSWORD = 'correct horse battery staple';

/** A Nyckel on an ephemeral port, on a fresh database of the suite's kind, with quiet logs. */
export async function startTestNyckel(
  options: {
    env?: Record<string, string>;
    clients?: ClientsFile;
    logger?: pino.Logger;
    mailTransport?: MailTransport;
    /** Default: a fresh database of the suite's kind (freshDatabase); `stop` drops it. */
    database?: Awaited<ReturnType<typeof freshDatabase>>;
  } & Pick<NyckelOptions, 'smsTransport' | 'twilioHttpClient' | 'factors'> = {},
): Promise<TestNyckel> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nyckel-test-'));
  const database = options.database ?? (await freshDatabase());
  const redis = testUsesRedis() ? freshRedisPrefix() : undefined;
  const settings: Settings = loadSettings({
    NODE_ENV: 'test',
    PORT: '0',
    HOST: '127.0.0.1',
    NYCKEL_DATA_DIR: dataDir,
    NYCKEL_MASTER_KEY: newMasterKey(),
    NYCKEL_LOG_LEVEL: 'silent',
    NYCKEL_DEMO: 'false',
    // Cheaper hashes keep the suite quick; the benchmark measures the production parameters.
    NYCKEL_ARGON2_MEMORY_KIB: '8192',
    NYCKEL_ARGON2_TIME_COST: '1',
    ...(redis ? { REDIS_URL: redisTestUrl, NYCKEL_REDIS_PREFIX: redis.prefix } : {}),
    ...options.env,
  });
  const clients = options.clients ?? parseClientsFile(testClientsYaml, 'test-clients.yaml');
  const nyckel = await startNyckel(settings, {
    database: database.target,
    clientsFile: clients,
    logger: options.logger ?? pino({ level: 'silent' }),
    mailTransport: options.mailTransport,
    smsTransport: options.smsTransport,
    twilioHttpClient: options.twilioHttpClient,
    factors: options.factors,
  });
  registerMasterKey(nyckel.db.prisma, nyckel.box);
  return {
    ...nyckel,
    dataDir,
    stop: async () => {
      await nyckel.close();
      await database.drop();
      await redis?.drop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
