import type { User } from '../generated/prisma/client.ts';
import type { PrismaClient } from '../storage/db.ts';

/**
 * What Nyckel keeps about one user, as the user may ask for it (GDPR articles 15 and 20): the profile,
 * addresses and numbers, sign-in methods by kind and name, sessions, remembered browsers, what each
 * relying party was allowed, and the user's audit events. Never a secret: no password hash, no
 * factor secret or factor data (TOTP seeds, recovery-code hashes, passkey and push keys, sealed
 * personal numbers), no token, code or token hash.
 */
export interface PersonalData {
  format: 'nyckel-personal-data/1';
  exportedAt: string;
  profile: {
    id: string;
    email: string | null;
    username: string | null;
    name: string | null;
    locale: string | null;
    status: string;
    createdAt: string;
    updatedAt: string;
    passwordChangedAt: string;
    deletionDueAt: string | null;
  };
  emails: Array<{ address: string; verifiedAt: string | null; addedAt: string }>;
  phones: Array<{ number: string; verifiedAt: string | null; addedAt: string }>;
  methods: Array<{ kind: string; name: string; confirmed: boolean; addedAt: string; lastUsedAt: string | null }>;
  sessions: Array<{ signedInAt: string | null; expiresAt: string | null; clients: string[] }>;
  rememberedBrowsers: Array<{
    browser: string | null;
    method: string;
    rememberedAt: string;
    lastUsedAt: string | null;
    until: string;
    revokedAt: string | null;
  }>;
  consents: Array<{ client: string; scopes: unknown; claims: unknown; resources: unknown; grantedAt: string; updatedAt: string }>;
  grants: Array<{ client: string | null; issuedAt: string | null; expiresAt: string | null }>;
  invitation: { address: string; sentAt: string; expiresAt: string; usedAt: string | null } | null;
  auditEvents: Array<{ at: string; type: string; ip: string | null; userAgent: string | null; details: unknown }>;
}

const iso = (date: Date | null | undefined) => (date ? date.toISOString() : null);
const fromSeconds = (seconds: unknown) => (typeof seconds === 'number' ? new Date(seconds * 1000).toISOString() : null);

/** The clear part of an oidc-provider model (src/storage/oidc-at-rest.ts): who, which client, when. */
interface ClearModel {
  clientId?: string;
  loginTs?: number;
  iat?: number;
  exp?: number;
  authorizations?: Record<string, unknown>;
}

export async function exportPersonalData(prisma: PrismaClient, user: User, now = new Date()): Promise<PersonalData> {
  const owned = { payload: { path: ['accountId'], equals: user.id } };
  const [emails, phones, methods, models, browsers, consents, invitation, events] = await Promise.all([
    prisma.userEmail.findMany({ where: { userId: user.id }, orderBy: { createdAt: 'asc' } }),
    prisma.userPhone.findMany({ where: { userId: user.id }, orderBy: { createdAt: 'asc' } }),
    prisma.factorEnrolment.findMany({ where: { userId: user.id }, orderBy: [{ position: 'asc' }, { createdAt: 'asc' }] }),
    prisma.oidcModel.findMany({ where: { type: { in: ['Session', 'Grant'] }, ...owned }, select: { type: true, payload: true, expiresAt: true } }),
    prisma.rememberedBrowser.findMany({ where: { userId: user.id }, orderBy: { createdAt: 'asc' } }),
    prisma.consent.findMany({ where: { userId: user.id }, orderBy: { grantedAt: 'asc' } }),
    prisma.invitation.findUnique({ where: { userId: user.id } }),
    prisma.auditEvent.findMany({ where: { userId: user.id }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] }),
  ]);
  const clear = (row: { payload: unknown }) => (row.payload ?? {}) as ClearModel;
  return {
    format: 'nyckel-personal-data/1',
    exportedAt: now.toISOString(),
    profile: {
      id: user.id,
      email: user.email,
      username: user.username,
      name: user.name,
      locale: user.locale,
      status: user.status,
      createdAt: user.createdAt.toISOString(),
      updatedAt: user.updatedAt.toISOString(),
      passwordChangedAt: user.passwordChangedAt.toISOString(),
      deletionDueAt: iso(user.deletionDueAt),
    },
    emails: emails.map((row) => ({ address: row.address, verifiedAt: iso(row.verifiedAt), addedAt: row.createdAt.toISOString() })),
    phones: phones.map((row) => ({ number: row.e164, verifiedAt: iso(row.verifiedAt), addedAt: row.createdAt.toISOString() })),
    // Kind and name only: `secret` and `data` are the factor's own (seeds, keys, hashes).
    methods: methods.map((row) => ({
      kind: row.type,
      name: row.label,
      confirmed: row.confirmed,
      addedAt: row.createdAt.toISOString(),
      lastUsedAt: iso(row.lastUsedAt),
    })),
    sessions: models
      .filter((row) => row.type === 'Session')
      .map((row) => ({ signedInAt: fromSeconds(clear(row).loginTs), expiresAt: iso(row.expiresAt), clients: Object.keys(clear(row).authorizations ?? {}) })),
    rememberedBrowsers: browsers.map((row) => ({
      browser: row.userAgent,
      method: row.factor,
      rememberedAt: row.createdAt.toISOString(),
      lastUsedAt: iso(row.lastUsedAt),
      until: row.expiresAt.toISOString(),
      revokedAt: iso(row.revokedAt),
    })),
    consents: consents.map((row) => ({
      client: row.clientId,
      scopes: row.scopes,
      claims: row.claims,
      resources: row.resources,
      grantedAt: row.grantedAt.toISOString(),
      updatedAt: row.updatedAt.toISOString(),
    })),
    grants: models
      .filter((row) => row.type === 'Grant')
      .map((row) => ({ client: clear(row).clientId ?? null, issuedAt: fromSeconds(clear(row).iat), expiresAt: iso(row.expiresAt) })),
    invitation: invitation
      ? {
          address: invitation.address,
          sentAt: invitation.createdAt.toISOString(),
          expiresAt: invitation.expiresAt.toISOString(),
          usedAt: iso(invitation.usedAt),
        }
      : null,
    auditEvents: events.map((row) => ({ at: row.createdAt.toISOString(), type: row.type, ip: row.ip, userAgent: row.userAgent, details: row.data })),
  };
}

/** The export as a file name for a download (`nyckel-data-<name>-<date>.json`, ASCII only). */
export function personalDataFileName(user: Pick<User, 'id' | 'username' | 'email'>, now = new Date()): string {
  const name = (user.username ?? user.email ?? user.id).replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 60);
  return `nyckel-data-${name}-${now.toISOString().slice(0, 10)}.json`;
}
