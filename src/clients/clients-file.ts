import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { readLogo, type Logo } from './logo.ts';
import { checkFapi2, profileMetadata, securityProfiles } from './fapi-profile.ts';
import { frontchannelLogoutUri, oneLine, publicJwk, redirectUri, scopeToken, supportContact, tokenEndpointAuthMethods, webUrl } from './client-fields.ts';

export { tokenEndpointAuthMethods };

/** A second-factor method: the id of a factor in src/factors/registry.ts (checked against it at start). */
export type FactorId = string;
const factorId = z.string().regex(/^[a-z][a-z0-9-]{0,39}$/, 'is not a method id (lower-case letters, digits and dashes)');

/** The client of Nyckel's own account pages (/account); added by Nyckel, never by the clients file. */
export const ACCOUNT_CLIENT_ID = 'nyckel-account';

/** The Device Authorization Grant (RFC 8628): sign-in on a TV or in a CLI, the code typed on a phone. */
export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

export const mfaPolicySchema = z
  .object({
    required: z.boolean().default(false),
    /** In the order offered; absent: the installation's methods (NYCKEL_MFA_METHODS, else every installed one). */
    methods: z.array(factorId).optional(),
    remember_days: z.number().int().min(0).max(365).optional(),
    forgot_device_email: z.boolean().default(false),
    allow_enrolment_at_login: z.boolean().default(true),
    /** Recovery codes stand in for a lost app or passkey even where `methods` does not list them (false: only where listed). */
    recovery_codes_fallback: z.boolean().optional(),
    /** Methods that may be the whole sign-in instead of the password (a passkey with user verification). */
    passwordless: z.array(z.enum(['passkey'])).optional(),
  })
  .strict();

export const clientSchema = z
  .object({
    client_id: z.string().regex(/^[A-Za-z0-9._~-]{1,128}$/, 'must be 1–128 characters of letters, digits, . _ ~ -'),
    name: z.string().min(1).max(100),
    first_party: z.boolean().default(false),
    redirect_uris: z.array(redirectUri).default([]),
    post_logout_redirect_uris: z.array(redirectUri).default([]),
    /** OIDC Back-Channel Logout: where Nyckel posts a logout token when the user signs out elsewhere. */
    backchannel_logout_uri: webUrl.optional(),
    backchannel_logout_session_required: z.boolean().optional(),
    /** OIDC Front-Channel Logout: the page Nyckel's sign-out page loads in a hidden frame (Nyckel's own, not oidc-provider's). */
    frontchannel_logout_uri: frontchannelLogoutUri.optional(),
    /** Whether that URL gets the iss and sid query parameters. */
    frontchannel_logout_session_required: z.boolean().optional(),
    grant_types: z
      .array(z.enum(['authorization_code', 'refresh_token', 'client_credentials', DEVICE_CODE_GRANT]))
      .min(1)
      .default(['authorization_code', 'refresh_token']),
    token_endpoint_auth_method: z.enum(tokenEndpointAuthMethods).default('client_secret_basic'),
    client_secret: z.string().min(16, 'must be at least 16 characters').optional(),
    /** private_key_jwt: the client's public keys, inline or where Nyckel fetches them. */
    jwks: z
      .object({ keys: z.array(publicJwk).min(1) })
      .strict()
      .optional(),
    jwks_uri: webUrl.optional(),
    scopes: z.array(scopeToken).min(1).default(['openid', 'profile', 'email', 'offline_access']),
    /** OIDC's default for a client that registers none is RS256, and relying-party libraries assume it. */
    id_token_signed_response_alg: z.enum(['RS256', 'ES256']).default('RS256'),
    /** DPoP (RFC 9449): the client must prove possession of its key at the token endpoint and with every access token. */
    dpop_bound_access_tokens: z.boolean().optional(),
    /** Authorization requests only through the pushed authorization request endpoint (RFC 9126). */
    require_pushed_authorization_requests: z.boolean().optional(),
    /** `fapi2`: the FAPI 2.0 Security Profile's rules for this client (fapi-profile.ts). */
    security_profile: z.enum(securityProfiles).optional(),
    /** The name people see on the pages and in mails (OIDC `client_name`); absent: `name`. */
    client_name: z.string().trim().min(1).max(100).optional(),
    /** A PNG or SVG file (relative to this file) shown beside "Signing in to <client>". */
    logo_file: z.string().min(1).optional(),
    /**
     * Who helps this client's users ("IT-support, 08-123 45 67", or { email, url, text }), shown on
     * error pages and where nothing else helps; absent: the installation's (NYCKEL_SUPPORT_*).
     */
    support_contact: supportContact.optional(),
    /** The display name in the From of mails sent for this client; absent: the service's name (NYCKEL_BRAND_NAME). */
    mail_sender_name: oneLine(60)
      .regex(/^[^<>"@]+$/, 'must not contain < > " or @')
      .optional(),
    /** What this client's sign-in form takes; absent: NYCKEL_SIGN_IN_NAME. */
    sign_in_name: z.enum(['username_or_email', 'username', 'email']).optional(),
    mfa: mfaPolicySchema.optional(),
  })
  .strict()
  .superRefine((client, ctx) => {
    checkFapi2(client, ctx);
    const usesCode = client.grant_types.includes('authorization_code');
    if (usesCode && client.redirect_uris.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['redirect_uris'], message: 'needs at least one URI for the authorization_code grant' });
    }
    if (client.grant_types.includes('refresh_token') && !usesCode && !client.grant_types.includes(DEVICE_CODE_GRANT)) {
      ctx.addIssue({ code: 'custom', path: ['grant_types'], message: `refresh_token needs authorization_code or ${DEVICE_CODE_GRANT}` });
    }
    if (client.frontchannel_logout_session_required !== undefined && !client.frontchannel_logout_uri) {
      ctx.addIssue({ code: 'custom', path: ['frontchannel_logout_session_required'], message: 'needs frontchannel_logout_uri' });
    }
    if (client.token_endpoint_auth_method === 'private_key_jwt') {
      if (client.jwks && client.jwks_uri) ctx.addIssue({ code: 'custom', path: ['jwks_uri'], message: 'must not be set together with jwks (choose one)' });
      if (!client.jwks && !client.jwks_uri) ctx.addIssue({ code: 'custom', path: ['jwks'], message: 'or jwks_uri is required for private_key_jwt' });
      if (client.client_secret) ctx.addIssue({ code: 'custom', path: ['client_secret'], message: 'must not be set for private_key_jwt' });
      return;
    }
    for (const key of ['jwks', 'jwks_uri'] as const) {
      if (client[key]) ctx.addIssue({ code: 'custom', path: [key], message: 'is used only with token_endpoint_auth_method: private_key_jwt' });
    }
    if (client.token_endpoint_auth_method === 'none') {
      if (client.client_secret)
        ctx.addIssue({ code: 'custom', path: ['client_secret'], message: 'must not be set for a public client (token_endpoint_auth_method: none)' });
      if (client.grant_types.includes('client_credentials')) {
        ctx.addIssue({ code: 'custom', path: ['grant_types'], message: 'client_credentials needs a confidential client' });
      }
    } else if (!client.client_secret) {
      ctx.addIssue({ code: 'custom', path: ['client_secret'], message: `is required for ${client.token_endpoint_auth_method}` });
    }
  });

export const resourceSchema = z
  .object({
    identifier: z.url({ message: 'must be an absolute URI' }),
    name: z.string().optional(),
    scopes: z.array(scopeToken).min(1),
    access_token_ttl: z.number().int().positive().optional(),
  })
  .strict();

export const clientsFileSchema = z
  .object({
    clients: z.array(clientSchema).default([]),
    resources: z.array(resourceSchema).default([]),
  })
  .strict()
  .superRefine((file, ctx) => {
    const seen = new Map<string, number>();
    file.clients.forEach((client, index) => {
      if (client.client_id === ACCOUNT_CLIENT_ID) {
        ctx.addIssue({ code: 'custom', path: ['clients', index, 'client_id'], message: `"${ACCOUNT_CLIENT_ID}" is reserved for Nyckel's own account pages` });
      }
      const first = seen.get(client.client_id);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['clients', index, 'client_id'], message: `duplicates clients[${first}]` });
      }
      seen.set(client.client_id, index);
    });
    const resourceScopes = new Set(file.resources.flatMap((r) => r.scopes));
    // nyckel:admin is the scope of Nyckel's own admin API (src/admin/resource.ts).
    const known = new Set(['openid', 'profile', 'email', 'phone', 'offline_access', 'nyckel:admin', ...resourceScopes]);
    file.clients.forEach((client, index) => {
      client.scopes.forEach((scope, scopeIndex) => {
        if (!known.has(scope)) {
          ctx.addIssue({
            code: 'custom',
            path: ['clients', index, 'scopes', scopeIndex],
            message: `"${scope}" is neither an OpenID scope nor a scope of a resource in this file`,
          });
        }
      });
    });
  });

/** A client as configured, with its logo read and checked (from `logo_file`). */
export type ClientConfig = z.output<typeof clientSchema> & { logo?: Logo };
export type ResourceConfig = z.output<typeof resourceSchema>;
export type ClientsFile = Omit<z.output<typeof clientsFileSchema>, 'clients'> & { clients: ClientConfig[] };
export type MfaPolicy = z.output<typeof mfaPolicySchema>;

export class ClientsFileError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ClientsFileError';
  }
}

type PathSegment = string | number | symbol;

/** `clients[1] (client_id "portal").redirect_uris[0]` — names the client, not only its index. */
function describePath(raw: unknown, issuePath: readonly PathSegment[]): string {
  let text = '';
  let node: unknown = raw;
  issuePath.forEach((segment, i) => {
    text += typeof segment === 'number' ? `[${segment}]` : `${i === 0 ? '' : '.'}${String(segment)}`;
    node = node && typeof node === 'object' ? (node as Record<PathSegment, unknown>)[segment] : undefined;
    if (i === 1 && issuePath[0] === 'clients' && node && typeof node === 'object') {
      const id = (node as Record<string, unknown>).client_id;
      if (typeof id === 'string') text += ` (client_id "${id}")`;
    }
  });
  return text || '(top level)';
}

/**
 * Replaces `${NAME}` (or `${NAME:-default}`) in every string with the environment variable,
 * collecting the ones that are missing and have no default.
 */
function substituteEnvironment(value: unknown, env: NodeJS.ProcessEnv, at: PathSegment[], missing: string[]): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (_match, name: string, fallback?: string) => {
      const found = env[name] || fallback;
      if (found === undefined || found === '') {
        missing.push(
          `${at
            .map((s) => (typeof s === 'number' ? `[${s}]` : `.${String(s)}`))
            .join('')
            .replace(/^\./, '')}: environment variable ${name} is not set`,
        );
        return '';
      }
      return found;
    });
  }
  if (Array.isArray(value)) return value.map((item, i) => substituteEnvironment(item, env, [...at, i], missing));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, substituteEnvironment(item, env, [...at, key], missing)]));
  }
  return value;
}

export function parseClientsFile(text: string, file: string, env: NodeJS.ProcessEnv = process.env): ClientsFile {
  let raw: unknown;
  if (file.endsWith('.json')) {
    try {
      raw = JSON.parse(text);
    } catch (error) {
      throw new ClientsFileError(file, [`not valid JSON: ${(error as Error).message}`]);
    }
  } else {
    const document = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: true });
    if (document.errors.length > 0) {
      throw new ClientsFileError(
        file,
        document.errors.map((e) => `not valid YAML: ${e.message.split('\n')[0]}`),
      );
    }
    raw = document.toJS() ?? {};
  }
  const missing: string[] = [];
  const substituted = substituteEnvironment(raw, env, [], missing);
  const parsed = clientsFileSchema.safeParse(substituted);
  const problems = [...missing, ...(parsed.success ? [] : parsed.error.issues.map((issue) => `${describePath(raw, issue.path)}: ${issue.message}`))];
  if (problems.length > 0 || !parsed.success) throw new ClientsFileError(file, problems);
  return withLogos(parsed.data, file, raw);
}

/** Reads each client's `logo_file`, relative to the clients file; any bad one is a problem of the file. */
function withLogos(parsed: z.output<typeof clientsFileSchema>, file: string, raw: unknown): ClientsFile {
  const problems: string[] = [];
  const clients = parsed.clients.map((client, index): ClientConfig => {
    if (!client.logo_file) return client;
    try {
      return { ...client, logo: readLogo(path.resolve(path.dirname(file), client.logo_file)) };
    } catch (error) {
      problems.push(`${describePath(raw, ['clients', index, 'logo_file'])}: ${(error as Error).message}`);
      return client;
    }
  });
  if (problems.length > 0) throw new ClientsFileError(file, problems);
  return { ...parsed, clients };
}

export function readClientsFile(file: string, env: NodeJS.ProcessEnv = process.env): ClientsFile {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new ClientsFileError(file, [`cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`]);
  }
  return parseClientsFile(text, path.relative(process.cwd(), file) || file, env);
}

/** Whether any client signs in on devices: only then are the device endpoints there (and in discovery). */
export function usesDeviceFlow(file: Pick<ClientsFile, 'clients'>): boolean {
  return file.clients.some((client) => client.grant_types.includes(DEVICE_CODE_GRANT));
}

/** oidc-provider client metadata for one configured client. */
export function toProviderMetadata(client: ClientConfig) {
  return {
    client_id: client.client_id,
    ...(client.client_secret ? { client_secret: client.client_secret } : {}),
    ...(client.jwks ? { jwks: client.jwks } : {}),
    ...(client.jwks_uri ? { jwks_uri: client.jwks_uri } : {}),
    client_name: client.client_name ?? client.name,
    redirect_uris: client.redirect_uris,
    post_logout_redirect_uris: client.post_logout_redirect_uris,
    ...(client.backchannel_logout_uri
      ? { backchannel_logout_uri: client.backchannel_logout_uri, backchannel_logout_session_required: client.backchannel_logout_session_required ?? false }
      : {}),
    grant_types: client.grant_types,
    response_types: client.grant_types.includes('authorization_code') ? ['code'] : [],
    token_endpoint_auth_method: client.token_endpoint_auth_method,
    scope: client.scopes.join(' '),
    id_token_signed_response_alg: client.id_token_signed_response_alg,
    ...profileMetadata(client),
  };
}
