import crypto from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import type { PrismaClient } from '../storage/db.ts';
import type { SecretBox } from '../security/crypto.ts';

/** ES256 signs by default; RS256 is there for clients that ask for it (id_token_signed_response_alg). */
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

/**
 * The private JWKS for oidc-provider: active keys first (oidc-provider signs with the first key of an
 * algorithm), then retired keys still published so that tokens they signed can be verified.
 */
export async function loadSigningKeys(prisma: PrismaClient, box: SecretBox, now = new Date()): Promise<{ keys: JWK[] }> {
  const rows = await prisma.signingKey.findMany({
    where: { OR: [{ retiredAt: null }, { publishUntil: { gt: now } }] },
    orderBy: [{ createdAt: 'desc' }],
  });
  rows.sort((a, b) => Number(a.retiredAt !== null) - Number(b.retiredAt !== null));
  return { keys: rows.map((row) => JSON.parse(box.open(PURPOSE, row.privateJwk, row.kid).toString('utf8')) as JWK) };
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

export async function deleteExpiredSigningKeys(prisma: PrismaClient, now = new Date()): Promise<number> {
  const { count } = await prisma.signingKey.deleteMany({ where: { retiredAt: { not: null }, publishUntil: { lte: now } } });
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
