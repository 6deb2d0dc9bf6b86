import { NyckelError } from '../errors.ts';
import { elementLines, parseJson } from './import-files.ts';
import type { ImportRow } from './import-rows.ts';
import { base32Encode } from './import-totp.ts';

/**
 * A Keycloak realm export (`kc.sh export --realm … --users realm_file`, or the partial export's JSON)
 * as import rows: username, email (emailVerified), first and last name, enabled, the password
 * credential (PBKDF2: kept as a hash) and an OTP credential (TOTP: an authenticator app). What Nyckel
 * does not take (roles, groups, federated identities, other credentials, required actions,
 * attributes) is listed per user in the report. The file is read whole.
 *
 * Keycloak keeps an OTP secret as the raw string it generated (secretData.value); the QR code it
 * shows holds the base32 of that string's UTF-8 bytes, which is what an authenticator app has.
 */

interface KeycloakCredential {
  type?: string;
  userLabel?: string;
  secretData?: unknown;
  credentialData?: unknown;
}

interface KeycloakUser {
  username?: unknown;
  email?: unknown;
  emailVerified?: unknown;
  firstName?: unknown;
  lastName?: unknown;
  enabled?: unknown;
  credentials?: KeycloakCredential[];
  [other: string]: unknown;
}

const text = (value: unknown) => (typeof value === 'string' && value.trim() ? value.trim() : undefined);

/** Keycloak's own, taken as they are or left out without a word. */
const ignored = new Set(['id', 'createdTimestamp', 'totp', 'notBefore', 'disableableCredentialTypes', 'access', 'self', 'origin', 'serviceAccountClientId']);
const taken = new Set(['username', 'email', 'emailVerified', 'firstName', 'lastName', 'enabled', 'credentials']);

function jsonObject(value: unknown): Record<string, unknown> {
  try {
    const parsed: unknown = typeof value === 'string' ? JSON.parse(value) : value;
    return parsed && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function notTakenFields(user: KeycloakUser): string[] {
  const defaultRole = (role: unknown) => typeof role === 'string' && role.startsWith('default-roles-');
  const notes: string[] = [];
  for (const [key, value] of Object.entries(user)) {
    if (taken.has(key) || ignored.has(key) || value === undefined || value === null) continue;
    if (Array.isArray(value)) {
      const listed = key === 'realmRoles' ? value.filter((role) => !defaultRole(role)) : value;
      const names = listed.map((item) =>
        typeof item === 'string' ? item : (text((item as Record<string, unknown>).identityProvider) ?? JSON.stringify(item)),
      );
      if (names.length > 0) notes.push(`not imported: ${key} ${names.join(', ')}`);
    } else if (typeof value === 'object') {
      const keys = Object.keys(value);
      if (keys.length > 0)
        notes.push(
          `not imported: ${key} ${
            key === 'clientRoles'
              ? Object.entries(value)
                  .map(([client, roles]) => `${client}: ${String(roles)}`)
                  .join('; ')
              : keys.join(', ')
          }`,
        );
    } else {
      notes.push(`not imported: ${key}`);
    }
  }
  return notes;
}

function credentialFields(credentials: KeycloakCredential[]): { fields: Record<string, unknown>; notes: string[] } {
  const fields: Record<string, unknown> = {};
  const notes: string[] = [];
  for (const credential of credentials) {
    if (!credential || typeof credential !== 'object') {
      notes.push('not imported: a credential that is not an object');
      continue;
    }
    const data = jsonObject(credential.credentialData);
    if (credential.type === 'password' && fields.password_hash === undefined) {
      fields.password_hash = { secretData: credential.secretData, credentialData: credential.credentialData };
    } else if (credential.type === 'otp' && data.subType === 'totp' && fields.totp_secret === undefined) {
      const secret = text(jsonObject(credential.secretData).value);
      fields.totp_secret = secret === undefined ? '' : base32Encode(Buffer.from(secret, 'utf8'));
      fields.totp_digits = data.digits;
      fields.totp_period = data.period;
      fields.totp_algorithm = data.algorithm;
    } else {
      notes.push(
        `not imported: credential ${credential.type ?? 'of no type'}${typeof data.subType === 'string' ? ` (${data.subType})` : ''}${credential.userLabel ? ` "${credential.userLabel}"` : ''}`,
      );
    }
  }
  return { fields, notes };
}

function keycloakRow(user: KeycloakUser, line: number): ImportRow {
  if (!user || typeof user !== 'object' || Array.isArray(user)) return { line, fields: { ' object': 'is not an object' } };
  const email = text(user.email);
  let username = text(user.username);
  // Keycloak's "email as username": Nyckel signs in by the address itself.
  if (username && email && username.toLowerCase() === email.toLowerCase()) username = undefined;
  const name = [text(user.firstName), text(user.lastName)].filter(Boolean).join(' ');
  const credentials = credentialFields(Array.isArray(user.credentials) ? user.credentials : []);
  return {
    line,
    fields: {
      ...(email ? { email } : {}),
      ...(username ? { username } : {}),
      ...(name ? { name } : {}),
      email_verified: user.emailVerified === true,
      ...credentials.fields,
    },
    notTaken: [...credentials.notes, ...notTakenFields(user)],
    disabled: user.enabled === false,
  };
}

/** The users of a realm export, each with the line its object starts on. */
export function keycloakRealmRows(content: string): ImportRow[] {
  const realm = parseJson(content);
  const users = realm && typeof realm === 'object' && !Array.isArray(realm) ? (realm as { users?: unknown }).users : undefined;
  if (!Array.isArray(users)) throw new NyckelError('invalid_input', 'not a Keycloak realm export: no "users" array (export the realm with its users)');
  const lines = elementLines(content, ['users']);
  return users.map((user: KeycloakUser, index) => keycloakRow(user, lines[index] || index + 1));
}
