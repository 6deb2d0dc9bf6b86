import type { AdapterPayload } from 'oidc-provider';
import type { SecretBox } from '../security/crypto.ts';
import type { PrismaClient } from './db.ts';

/**
 * How oidc-provider's models are kept at rest, in the database and in Redis, so that a read-only
 * copy (a leak, a backup) hands out no live token:
 *
 * - A model's id is, for every model but a Grant, a bearer secret: the access or refresh token, the
 *   authorization code, the session cookie's value, the PAR request_uri, the device code, the
 *   interaction id… Only its keyed hash (HMAC-SHA256 with a key derived from the master key) is
 *   stored; a look-up hashes the value presented. A Grant's id is no credential and is what
 *   revocation goes by, so it stays as it is. A device flow's user code is stored hashed too.
 * - The payload names the id again (`jti`), and an Interaction also carries the session id, the PAR
 *   id and its own id in `returnTo`: the whole payload is sealed (AES-256-GCM, bound to the row), which
 *   is also how `findByUid` gives oidc-provider a Session's id back. Beside it, the fields queries
 *   need (account, client, grant, session uid, login time, expiry) are kept in clear.
 */
export const clearIdModels: ReadonlySet<string> = new Set(['Grant']);

/** What stays readable for queries: who, which client and grant, which session, when. No secret. */
const clearFields = ['accountId', 'clientId', 'grantId', 'uid', 'sessionUid', 'loginTs', 'authorizations', 'iat', 'exp'] as const;

const ID_PURPOSE = 'oidc-model-id';
const USER_CODE_PURPOSE = 'oidc-user-code';
const PAYLOAD_PURPOSE = 'oidc-model';

export class OidcAtRest {
  constructor(private readonly box: SecretBox) {}

  /** The id a model of `type` is stored under. */
  storedId(type: string, id: string): string {
    return clearIdModels.has(type) ? id : this.box.mac(ID_PURPOSE, id);
  }

  storedUserCode(userCode: string): string {
    return this.box.mac(USER_CODE_PURPOSE, userCode);
  }

  /** The payload sealed for the row it is stored in (moved to another row it does not open). */
  seal(type: string, storedId: string, payload: AdapterPayload): Uint8Array<ArrayBuffer> {
    return this.box.seal(PAYLOAD_PURPOSE, JSON.stringify(payload), `${type}:${storedId}`);
  }

  open(type: string, storedId: string, sealed: Uint8Array): AdapterPayload {
    return JSON.parse(this.box.open(PAYLOAD_PURPOSE, sealed, `${type}:${storedId}`).toString('utf8')) as AdapterPayload;
  }

  /** The part of the payload kept in clear beside the sealed whole. */
  clearPart(payload: AdapterPayload): Record<string, unknown> {
    const clear: Record<string, unknown> = {};
    for (const field of clearFields) if (payload[field] !== undefined) clear[field] = payload[field];
    return clear;
  }
}

/**
 * Rows written before the secrets_at_rest migration hold the id in clear and no sealed payload:
 * re-keyed here (at start-up, where the master key is known), each by one conditional UPDATE, so
 * nodes starting together re-key every row once. Sessions and refresh tokens keep working.
 */
export async function rekeyLegacyOidcModels(prisma: PrismaClient, atRest: OidcAtRest, batchSize = 500): Promise<number> {
  let rekeyed = 0;
  for (;;) {
    const rows = await prisma.oidcModel.findMany({ where: { sealed: null }, take: batchSize });
    if (rows.length === 0) return rekeyed;
    const updates = rows.map((row) => {
      const payload = row.payload as AdapterPayload;
      const storedId = atRest.storedId(row.type, row.id);
      return prisma.oidcModel.updateMany({
        where: { type: row.type, id: row.id, sealed: null },
        data: {
          id: storedId,
          payload: atRest.clearPart(payload) as object,
          sealed: atRest.seal(row.type, storedId, payload),
          userCode: row.userCode === null ? null : atRest.storedUserCode(row.userCode),
        },
      });
    });
    const results = await prisma.$transaction(updates);
    rekeyed += results.reduce((sum, { count }) => sum + count, 0);
  }
}
