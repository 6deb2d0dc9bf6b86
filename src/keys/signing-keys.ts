import crypto from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import type { PrismaClient } from '../storage/db.ts';
import type { SecretBox } from '../security/crypto.ts';

/**
 * RS256 signs ID tokens by default (OIDC's default); ES256 for clients that ask for it
 * (id_token_signed_response_alg), and the JWT access tokens of resource servers.
 */
export const signingAlgorithms = ['ES256', 'RS256'] as const;
export type SigningAlgorithm = (typeof signingAlgorithms)[number];

const PURPOSE = 'signing-key';

async function createKey(prisma: PrismaClient, box: SecretBox, alg: SigningAlgorithm): Promise<string> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'RS256' ? { modulusLength: 2048 } : {}) });
  const kid = `${alg.toLowerCase()}-${crypto.randomBytes(9).toString('base64url')}`;
  const jwk: JWK = { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' };
  await prisma.signingKey.create({ data: { kid, alg, privateJwk: box.seal(PURPOSE, JSON.stringify(jwk), kid) } });
  return kid;
}

/** Creates the first key of each algorithm when there is none (first start). */
export async function ensureSigningKeys(prisma: PrismaClient, box: SecretBox): Promise<void> {
  for (const alg of signingAlgorithms) {
    const active = await prisma.signingKey.count({ where: { alg, retiredAt: null } });
    if (active === 0) await createKey(prisma, box, alg);
  }
}

/** The private JWKS for oidc-provider, and which of its keys /jwks leaves out. */
export interface SigningKeySet {
  keys: JWK[];
  /** Retired keys past their publication that still verify `id_token_hint` (logout, prompt=none). */
  unpublished: string[];
}

/**
 * The private JWKS for oidc-provider: active keys first (oidc-provider signs with the first key of an
 * algorithm), then retired keys still published so that tokens they signed can be verified, then
 * retired keys kept `hintSeconds` after their retirement (the session lifetime): relying parties keep
 * ID tokens for their sessions and send them back as `id_token_hint` at logout. Those are marked
 * verify-only (key_ops), so oidc-provider never signs with them, and are not published.
 */
export async function loadSigningKeys(prisma: PrismaClient, box: SecretBox, options: { hintSeconds?: number; now?: Date } = {}): Promise<SigningKeySet> {
  const now = options.now ?? new Date();
  const hintsSince = new Date(now.getTime() - (options.hintSeconds ?? 0) * 1000);
  const rows = await prisma.signingKey.findMany({
    where: { OR: [{ retiredAt: null }, { publishUntil: { gt: now } }, { retiredAt: { gt: hintsSince } }] },
    orderBy: [{ createdAt: 'desc' }],
  });
  const published = (row: (typeof rows)[number]) => row.retiredAt === null || (row.publishUntil !== null && row.publishUntil > now);
  const rank = (row: (typeof rows)[number]) => (row.retiredAt === null ? 0 : published(row) ? 1 : 2);
  rows.sort((a, b) => rank(a) - rank(b));
  const keys = rows.map((row) => {
    const jwk = JSON.parse(box.open(PURPOSE, row.privateJwk, row.kid).toString('utf8')) as JWK;
    return published(row) ? jwk : { ...jwk, key_ops: ['verify'] };
  });
  return { keys, unpublished: rows.filter((row) => !published(row)).map((row) => row.kid) };
}

/**
 * Adds a new key of each algorithm and retires the current ones, which stay published for
 * `publishSeconds` (the longest lifetime of a token they may have signed).
 */
export async function rotateSigningKeys(prisma: PrismaClient, box: SecretBox, publishSeconds: number, now = new Date()) {
  const publishUntil = new Date(now.getTime() + publishSeconds * 1000);
  const added: string[] = [];
  const retired: string[] = [];
  for (const alg of signingAlgorithms) {
    const current = await prisma.signingKey.findMany({ where: { alg, retiredAt: null } });
    added.push(await createKey(prisma, box, alg));
    await prisma.signingKey.updateMany({
      where: { kid: { in: current.map((k) => k.kid) } },
      data: { retiredAt: now, publishUntil },
    });
    retired.push(...current.map((k) => k.kid));
  }
  return { added, retired, publishUntil };
}

/** Removes retired keys no longer published nor kept for `id_token_hint` (`hintSeconds` after retirement). */
export async function deleteExpiredSigningKeys(prisma: PrismaClient, now = new Date(), hintSeconds = 0): Promise<number> {
  const hintsSince = new Date(now.getTime() - hintSeconds * 1000);
  const { count } = await prisma.signingKey.deleteMany({
    where: { retiredAt: { not: null, lte: hintsSince }, publishUntil: { lte: now } },
  });
  return count;
}

export async function loadCookieKeys(prisma: PrismaClient, box: SecretBox): Promise<string[]> {
  const name = 'cookie-keys';
  const existing = await prisma.serverSecret.findUnique({ where: { name } });
  if (existing) return JSON.parse(box.open('server-secret', existing.value, name).toString('utf8')) as string[];
  const keys = [crypto.randomBytes(32).toString('base64url')];
  const value = box.seal('server-secret', JSON.stringify(keys), name);
  // Two nodes starting at once: the first insert wins, the other reads the winner's keys.
  await prisma.serverSecret.createMany({ data: [{ name, value }], skipDuplicates: true });
  return loadCookieKeys(prisma, box);
}
