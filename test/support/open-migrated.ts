// Run as its own process by test/storage/migrate-on-demand.test.ts: opens the PGlite data directory
// given as argument as the server does, then prints how often the schema engine was loaded.
import { openMigratedDatabase } from '../../src/nyckel.ts';
import { schemaEngineLoads } from '../../src/storage/migrate.ts';

const db = await openMigratedDatabase({ kind: 'pglite', dataDir: process.argv[2] });
await db.close();
console.log(JSON.stringify({ schemaEngineLoads: schemaEngineLoads() }));
