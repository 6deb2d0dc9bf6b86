import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import type { PrismaClient } from './db.ts';
import type { OidcAtRest } from './oidc-at-rest.ts';

/** Destroys a model and says whether it was there: what makes a resume single-use (src/provider/single-use-resume.ts). */
export interface OnceDestroyable {
  destroyOnce(id: string): Promise<boolean>;
}

/** Models whose second consume means replay: the whole grant is revoked and the request refused. */
export const grantSources = new Set(['AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);

export interface OidcAdapterOptions {
  /** How ids are hashed and payloads sealed (src/storage/oidc-at-rest.ts). */
  atRest: OidcAtRest;
  /** Revokes a replayed code's grant wherever the grant's other models are kept; default: this table. */
  revokeGrant?: (grantId: string) => Promise<void>;
}

/**
 * oidc-provider's storage for every model (sessions, interactions, codes, tokens, grants, …) in one
 * table, rows keyed by the hash of the model's id with the payload sealed (src/storage/oidc-at-rest.ts).
 * Expired rows are never returned and are removed by `sweepExpiredOidcModels`. A replayed code
 * revokes its grant through `revokeGrant` (wherever the grant's other models are kept).
 */
export function createOidcAdapter(prisma: PrismaClient, options: OidcAdapterOptions) {
  const { atRest } = options;
  const notExpired = () => ({ OR: [{ expiresAt: null }, { expiresAt: { gt: new Date() } }] });
  // Only what `present` reads: the clear `payload` part is for the account pages' queries, not for oidc-provider.
  const readColumns = { id: true, sealed: true, consumedAt: true } as const;

  return class PrismaOidcAdapter implements Adapter, OnceDestroyable {
    constructor(private readonly type: string) {}

    private present(row: { id: string; sealed: Uint8Array | null; consumedAt: Date | null } | null): AdapterPayload | undefined {
      // A row without a sealed payload was written before the secrets_at_rest migration and is re-keyed at start-up.
      if (!row?.sealed) return undefined;
      const payload = atRest.open(this.type, row.id, row.sealed);
      return row.consumedAt ? { ...payload, consumed: Math.floor(row.consumedAt.getTime() / 1000) } : payload;
    }

    private storedId(id: string): string {
      return atRest.storedId(this.type, id);
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      const storedId = this.storedId(id);
      const data = {
        payload: atRest.clearPart(payload) as object,
        sealed: atRest.seal(this.type, storedId, payload),
        grantId: payload.grantId ?? null,
        userCode: payload.userCode ? atRest.storedUserCode(payload.userCode) : null,
        uid: payload.uid ?? null,
        expiresAt: expiresIn ? new Date(Date.now() + expiresIn * 1000) : null,
      };
      await prisma.oidcModel.upsert({
        where: { type_id: { type: this.type, id: storedId } },
        create: { type: this.type, id: storedId, ...data },
        update: data,
        select: { type: true },
      });
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      return this.present(await prisma.oidcModel.findFirst({ where: { type: this.type, id: this.storedId(id), ...notExpired() }, select: readColumns }));
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return this.present(
        await prisma.oidcModel.findFirst({ where: { type: this.type, userCode: atRest.storedUserCode(userCode), ...notExpired() }, select: readColumns }),
      );
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return this.present(await prisma.oidcModel.findFirst({ where: { type: this.type, uid, ...notExpired() }, select: readColumns }));
    }

    async destroy(id: string): Promise<void> {
      await this.destroyOnce(id);
    }

    async destroyOnce(id: string): Promise<boolean> {
      const { count } = await prisma.oidcModel.deleteMany({ where: { type: this.type, id: this.storedId(id) } });
      return count > 0;
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await prisma.oidcModel.deleteMany({ where: { grantId } });
    }

    /**
     * Marks the row consumed in one conditional UPDATE, so of two parallel uses of one code exactly one
     * wins; the loser is treated as a replay (oidc-provider's own check runs before, on a stale read).
     */
    async consume(id: string): Promise<void> {
      const storedId = this.storedId(id);
      const { count } = await prisma.oidcModel.updateMany({
        where: { type: this.type, id: storedId, consumedAt: null },
        data: { consumedAt: new Date() },
      });
      if (count === 0 && grantSources.has(this.type)) {
        const row = await prisma.oidcModel.findUnique({ where: { type_id: { type: this.type, id: storedId } } });
        if (row?.grantId) await (options.revokeGrant ?? ((grantId: string) => this.revokeByGrantId(grantId)))(row.grantId);
        throw new errors.InvalidGrant(`${this.type} already consumed`);
      }
    }
  };
}

export async function sweepExpiredOidcModels(prisma: PrismaClient, now = new Date()): Promise<number> {
  const { count } = await prisma.oidcModel.deleteMany({ where: { expiresAt: { lte: now } } });
  return count;
}
