import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import type { PrismaClient } from './db.ts';
import type { OidcAtRest } from './oidc-at-rest.ts';
import { driverOf } from './sql.ts';

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
interface StoredRow {
  id: string;
  sealed: Uint8Array | null;
  consumedAt: Date | null;
}

const READ = `SELECT id, sealed, consumed_at AS "consumedAt" FROM oidc_models`;
const LIVE = `(expires_at IS NULL OR expires_at > $3)`;

/**
 * oidc-provider's storage for every model (sessions, interactions, codes, tokens, grants, …) in one
 * table, rows keyed by the hash of the model's id with the payload sealed (src/storage/oidc-at-rest.ts).
 * Expired rows are never returned and are removed by `sweepExpiredOidcModels`. A replayed code
 * revokes its grant through `revokeGrant` (wherever the grant's other models are kept). Its
 * statements go straight to the driver (src/storage/sql.ts): a sign-in runs a dozen of them.
 */
export function createOidcAdapter(prisma: PrismaClient, options: OidcAdapterOptions) {
  const { atRest } = options;
  const sql = driverOf(prisma);

  return class PrismaOidcAdapter implements Adapter, OnceDestroyable {
    constructor(private readonly type: string) {}

    private present(row: StoredRow | undefined): AdapterPayload | undefined {
      // A row without a sealed payload was written before the secrets_at_rest migration and is re-keyed at start-up.
      if (!row?.sealed) return undefined;
      const payload = atRest.open(this.type, row.id, row.sealed);
      return row.consumedAt ? { ...payload, consumed: Math.floor(row.consumedAt.getTime() / 1000) } : payload;
    }

    private storedId(id: string): string {
      return atRest.storedId(this.type, id);
    }

    private async findWhere(column: 'id' | 'user_code' | 'uid', value: string): Promise<AdapterPayload | undefined> {
      const { rows } = await sql.query<StoredRow>(`${READ} WHERE type = $1 AND ${column} = $2 AND ${LIVE} LIMIT 1`, [this.type, value, new Date()]);
      return this.present(rows[0]);
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      const storedId = this.storedId(id);
      await sql.query(
        `INSERT INTO oidc_models (type, id, payload, sealed, grant_id, user_code, uid, expires_at)
         VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, $8)
         ON CONFLICT (type, id) DO UPDATE SET payload = EXCLUDED.payload, sealed = EXCLUDED.sealed, grant_id = EXCLUDED.grant_id,
           user_code = EXCLUDED.user_code, uid = EXCLUDED.uid, expires_at = EXCLUDED.expires_at`,
        [
          this.type,
          storedId,
          JSON.stringify(atRest.clearPart(payload)),
          Buffer.from(atRest.seal(this.type, storedId, payload)),
          payload.grantId ?? null,
          payload.userCode ? atRest.storedUserCode(payload.userCode) : null,
          payload.uid ?? null,
          expiresIn ? new Date(Date.now() + expiresIn * 1000) : null,
        ],
      );
    }

    find(id: string): Promise<AdapterPayload | undefined> {
      return this.findWhere('id', this.storedId(id));
    }

    findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return this.findWhere('user_code', atRest.storedUserCode(userCode));
    }

    findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return this.findWhere('uid', uid);
    }

    async destroy(id: string): Promise<void> {
      await this.destroyOnce(id);
    }

    async destroyOnce(id: string): Promise<boolean> {
      const { count } = await sql.query('DELETE FROM oidc_models WHERE type = $1 AND id = $2', [this.type, this.storedId(id)]);
      return count > 0;
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await sql.query('DELETE FROM oidc_models WHERE grant_id = $1', [grantId]);
    }

    /**
     * Marks the row consumed in one conditional UPDATE, so of two parallel uses of one code exactly one
     * wins; the loser is treated as a replay (oidc-provider's own check runs before, on a stale read).
     */
    async consume(id: string): Promise<void> {
      const storedId = this.storedId(id);
      const { count } = await sql.query('UPDATE oidc_models SET consumed_at = $1 WHERE type = $2 AND id = $3 AND consumed_at IS NULL', [
        new Date(),
        this.type,
        storedId,
      ]);
      if (count === 0 && grantSources.has(this.type)) {
        const { rows } = await sql.query<{ grantId: string | null }>('SELECT grant_id AS "grantId" FROM oidc_models WHERE type = $1 AND id = $2', [
          this.type,
          storedId,
        ]);
        const grantId = rows[0]?.grantId;
        if (grantId) await (options.revokeGrant ?? ((revoked: string) => this.revokeByGrantId(revoked)))(grantId);
        throw new errors.InvalidGrant(`${this.type} already consumed`);
      }
    }
  };
}

export async function sweepExpiredOidcModels(prisma: PrismaClient, now = new Date()): Promise<number> {
  const { count } = await prisma.oidcModel.deleteMany({ where: { expiresAt: { lte: now } } });
  return count;
}
