/**
 * `npm run bench:statements [-- --pglite]`: the CPU of one statement on each road Nyckel has to the
 * database, measured in one run: a Prisma model call, Prisma's $queryRaw, and the driver itself
 * (src/storage/sql.ts, the pg pool or PGlite that Prisma uses). The statements are the oidc-provider
 * adapter's (read one model, write one model). Prints CPU and wall time per statement and each road's
 * CPU as a multiple of the driver's.
 */
import { parseArgs } from 'node:util';
import { openMigratedDatabase } from '../src/nyckel.ts';
import { driverOf } from '../src/storage/sql.ts';
import { freshPostgresDatabase } from './targets.ts';

const { values } = parseArgs({ options: { pglite: { type: 'boolean', default: false }, statements: { type: 'string', default: '2000' } } });
const statements = Number(values.statements);
const server = values.pglite ? undefined : await freshPostgresDatabase(process.env.BENCH_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres');
const db = await openMigratedDatabase(server ? { kind: 'postgres', url: server.url } : { kind: 'pglite-memory' });
const { prisma } = db;
const sql = driverOf(prisma);
const sealed = Buffer.alloc(1500, 7);
await prisma.oidcModel.create({ data: { type: 'Session', id: 'bench', payload: { a: 1 }, sealed } });

async function cpuPerStatement(run: () => Promise<unknown>): Promise<{ cpuMs: number; wallMs: number }> {
  for (let i = 0; i < statements / 10; i++) await run();
  const cpu = process.cpuUsage();
  const began = performance.now();
  for (let i = 0; i < statements; i++) await run();
  const used = process.cpuUsage(cpu);
  return { cpuMs: (used.user + used.system) / 1000 / statements, wallMs: (performance.now() - began) / statements };
}

const live = () => ({ OR: [{ expiresAt: null }, { expiresAt: { gt: new Date() } }] });
const roads: Record<string, Record<string, () => Promise<unknown>>> = {
  'read a model': {
    'Prisma model call': () =>
      prisma.oidcModel.findFirst({ where: { type: 'Session', id: 'bench', ...live() }, select: { id: true, sealed: true, consumedAt: true } }),
    'Prisma $queryRaw': () =>
      prisma.$queryRaw`SELECT id, sealed, consumed_at FROM oidc_models WHERE type = ${'Session'} AND id = ${'bench'} AND (expires_at IS NULL OR expires_at > ${new Date()})`,
    driver: () =>
      sql.query('SELECT id, sealed, consumed_at FROM oidc_models WHERE type = $1 AND id = $2 AND (expires_at IS NULL OR expires_at > $3)', [
        'Session',
        'bench',
        new Date(),
      ]),
  },
  'write a model': {
    'Prisma model call': () =>
      prisma.oidcModel.upsert({
        where: { type_id: { type: 'Session', id: 'bench' } },
        create: { type: 'Session', id: 'bench', payload: { a: 1 }, sealed },
        update: { payload: { a: 1 }, sealed },
        select: { type: true },
      }),
    'Prisma $queryRaw': () =>
      prisma.$executeRaw`INSERT INTO oidc_models (type, id, payload, sealed) VALUES (${'Session'}, ${'bench'}, ${'{"a":1}'}::jsonb, ${sealed})
        ON CONFLICT (type, id) DO UPDATE SET payload = EXCLUDED.payload, sealed = EXCLUDED.sealed`,
    driver: () =>
      sql.query(
        `INSERT INTO oidc_models (type, id, payload, sealed) VALUES ($1, $2, $3::jsonb, $4)
         ON CONFLICT (type, id) DO UPDATE SET payload = EXCLUDED.payload, sealed = EXCLUDED.sealed`,
        ['Session', 'bench', '{"a":1}', sealed],
      ),
  },
};

try {
  console.log(`${server ? 'PostgreSQL server' : 'PGlite'}, ${statements} statements each, Node ${process.version}:`);
  for (const [statement, ways] of Object.entries(roads)) {
    const driver = await cpuPerStatement(ways.driver);
    for (const [road, run] of Object.entries(ways)) {
      const figures = road === 'driver' ? driver : await cpuPerStatement(run);
      console.log(
        `  ${statement}, ${road.padEnd(18)} ${figures.cpuMs.toFixed(3)} ms CPU (${(figures.cpuMs / driver.cpuMs).toFixed(2)} × the driver), ${figures.wallMs.toFixed(3)} ms wall`,
      );
    }
  }
} finally {
  await db.close();
  await server?.drop();
}
