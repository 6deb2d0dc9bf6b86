import { z } from 'zod';
import type { PrismaClient } from '../storage/db.ts';
import type { AuditContext, AuditLog } from './audit.ts';
import { revokeClientAccess, type RevokeElsewhere } from './revoke-access.ts';

/** What a relying party asks for, or has been allowed: OpenID scopes, single claims, and resource scopes by indicator. */
export interface ConsentScope {
  scopes: string[];
  claims: string[];
  resources: Record<string, string[]>;
}

const stored = z.object({
  scopes: z.array(z.string()).catch([]),
  claims: z.array(z.string()).catch([]),
  resources: z.record(z.string(), z.array(z.string())).catch({}),
});

const union = (a: string[], b: string[]) => [...new Set([...a, ...b])].sort();

/**
 * Consent remembered per user and relying party, across sessions and browsers, until the user revokes
 * it on the account pages (which also revokes what the relying party holds). A request for more than
 * was allowed asks again, for the new part only.
 */
export class Consents {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly audit: AuditLog,
    private readonly revokeElsewhere: RevokeElsewhere,
  ) {}

  private async allowed(userId: string, clientId: string): Promise<ConsentScope | undefined> {
    const row = await this.prisma.consent.findUnique({ where: { userId_clientId: { userId, clientId } } });
    return row ? stored.parse(row) : undefined;
  }

  /** What of `asked` the user has not allowed yet (all of it when nothing was). */
  async notYetAllowed(userId: string, clientId: string, asked: ConsentScope): Promise<ConsentScope> {
    const allowed = (await this.allowed(userId, clientId)) ?? { scopes: [], claims: [], resources: {} };
    const beyond = (wanted: string[], given: string[]) => wanted.filter((item) => !given.includes(item));
    const resources = Object.entries(asked.resources)
      .map(([indicator, scopes]) => [indicator, beyond(scopes, allowed.resources[indicator] ?? [])] as const)
      .filter(([, scopes]) => scopes.length > 0);
    return { scopes: beyond(asked.scopes, allowed.scopes), claims: beyond(asked.claims, allowed.claims), resources: Object.fromEntries(resources) };
  }

  /** Adds what the user just allowed to what they had allowed before. */
  async remember(userId: string, clientId: string, granted: ConsentScope, context: AuditContext = {}): Promise<void> {
    try {
      await this.merge(userId, clientId, granted);
    } catch (error) {
      // A parallel "Allow" created the row first (the unique index decides): add to it instead.
      if ((error as { code?: string }).code !== 'P2002') throw error;
      await this.merge(userId, clientId, granted);
    }
    await this.audit.record('consent.granted', {
      userId,
      data: { client: clientId, scopes: granted.scopes, resources: Object.keys(granted.resources) },
      ...context,
    });
  }

  private async merge(userId: string, clientId: string, granted: ConsentScope): Promise<void> {
    const before = (await this.allowed(userId, clientId)) ?? { scopes: [], claims: [], resources: {} };
    const resources = { ...before.resources };
    for (const [indicator, scopes] of Object.entries(granted.resources)) resources[indicator] = union(resources[indicator] ?? [], scopes);
    const merged = { scopes: union(before.scopes, granted.scopes), claims: union(before.claims, granted.claims), resources };
    await this.prisma.consent.upsert({
      where: { userId_clientId: { userId, clientId } },
      create: { userId, clientId, ...merged },
      update: merged,
    });
  }

  /** The relying parties the user has allowed something, newest first. */
  async list(userId: string): Promise<Array<{ clientId: string; scopes: string[]; grantedAt: Date }>> {
    const rows = await this.prisma.consent.findMany({ where: { userId }, orderBy: { updatedAt: 'desc' } });
    return rows.map((row) => ({ clientId: row.clientId, scopes: stored.parse(row).scopes, grantedAt: row.grantedAt }));
  }

  /** Forgets the consent and revokes what the relying party holds (grants, refresh and access tokens); false when there was none. */
  async revoke(userId: string, clientId: string, context: AuditContext = {}): Promise<boolean> {
    const result = await this.prisma.$transaction(async (tx) => {
      const { count } = await tx.consent.deleteMany({ where: { userId, clientId } });
      if (count === 0) return undefined;
      const revoked = await revokeClientAccess(tx, userId, clientId);
      await this.audit.within(tx).record('consent.revoked', { userId, data: { client: clientId, grantsRevoked: revoked.grants }, ...context });
      return revoked;
    });
    if (!result) return false;
    await this.revokeElsewhere(result);
    return true;
  }
}
