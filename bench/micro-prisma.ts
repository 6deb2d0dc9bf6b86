import { openMigratedDatabase } from '../src/nyckel.ts';
import { freshServerDatabase } from '../test/support/database.ts';
const kind = process.argv[2] ?? 'postgres';
const fresh = kind === 'postgres' ? await freshServerDatabase() : undefined;
const db = await openMigratedDatabase(fresh ? { kind: 'postgres', url: fresh.url } : { kind: 'pglite-memory' });
const p = db.prisma;
await p.oidcModel.create({ data: { type: 'Session', id: 'abc', payload: { a: 1 }, sealed: Buffer.alloc(1500, 7) } });
async function time(name: string, fn: () => Promise<unknown>, n = 2000) {
  for (let i = 0; i < 200; i++) await fn();
  const c0 = process.cpuUsage(); const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn();
  const c = process.cpuUsage(c0); const t = performance.now() - t0;
  console.log(name.padEnd(30), 'cpu/op', ((c.user + c.system) / 1000 / n).toFixed(3), 'ms  wall/op', (t / n).toFixed(3), 'ms');
}
const readColumns = { id: true, sealed: true, consumedAt: true } as const;
await time('findFirst model', () => p.oidcModel.findFirst({ where: { type: 'Session', id: 'abc', OR: [{ expiresAt: null }, { expiresAt: { gt: new Date() } }] }, select: readColumns }));
await time('$queryRaw', () => p.$queryRaw`SELECT id, sealed, consumed_at FROM oidc_models WHERE type = ${'Session'} AND id = ${'abc'} AND (expires_at IS NULL OR expires_at > ${new Date()})`);
await time('$queryRaw SELECT 1', () => p.$queryRaw`SELECT 1`);
await time('upsert model', () => p.oidcModel.upsert({ where: { type_id: { type: 'Session', id: 'abc' } }, create: { type: 'Session', id: 'abc', payload: { a: 1 }, sealed: Buffer.alloc(1500, 7) }, update: { payload: { a: 1 }, sealed: Buffer.alloc(1500, 7) }, select: { type: true } }));
await time('$executeRaw upsert', () => p.$executeRaw`INSERT INTO oidc_models (type, id, payload, sealed) VALUES (${'Session'}, ${'abc'}, ${JSON.stringify({ a: 1 })}::jsonb, ${Buffer.alloc(1500, 7)}) ON CONFLICT (type, id) DO UPDATE SET payload = EXCLUDED.payload, sealed = EXCLUDED.sealed`);
if (kind === 'postgres') {
  const pg = (await import('pg')).default;
  const c = new pg.Client({ connectionString: fresh!.url }); await c.connect();
  await time('pg raw select', () => c.query('SELECT id, sealed, consumed_at FROM oidc_models WHERE type = $1 AND id = $2', ['Session', 'abc']));
  await time('pg SELECT 1', () => c.query('SELECT 1'));
  await c.end();
}
await db.close(); await fresh?.drop();
process.exit(0);
