import fs from 'node:fs/promises';
import path from 'node:path';
import { createRequire } from 'node:module';
import pg from 'pg';
import type * as engineGlueModule from '@prisma/schema-engine-wasm/schema_engine_bg';
import { bindMigrationAwareSqlAdapterFactory } from '@prisma/driver-adapter-utils';
import type { SqlDriverAdapter, SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils';
import type { DatabaseTarget } from './db.ts';
import { projectRoot } from '../paths.ts';
import { isStorageUnavailable } from './unavailable.ts';

/**
 * Migrations without the Prisma CLI: Prisma's schema engine compiled to wasm (shipped inside the
 * `prisma` package, matching its version) talks to the database through the app's own driver
 * adapter, so the same code migrates the embedded PGlite and a PostgreSQL server.
 */
export const migrationsDir = path.join(projectRoot, 'prisma/migrations');
export const schemaPath = path.join(projectRoot, 'prisma/schema.prisma');

type EngineGlue = typeof engineGlueModule & { __wbg_set_wasm(exports: WebAssembly.Exports): void };
type SchemaEngine = Awaited<ReturnType<typeof engineGlueModule.SchemaEngine.new>>;

// The wasm-bindgen glue keeps module-level views of one instance's memory, so there is exactly one
// instance per process; each engine created on it is independent. It is loaded on first use only:
// a start that finds nothing to migrate never loads it (tens of MB of wasm code and memory).
let wasmReady: Promise<EngineGlue> | undefined;
let engineLoads = 0;

/** How many times this process has loaded the schema engine (0 or 1; for tests). */
export function schemaEngineLoads(): number {
  return engineLoads;
}

function initialiseWasm(): Promise<EngineGlue> {
  wasmReady ??= (async () => {
    engineLoads++;
    const require = createRequire(import.meta.url);
    const wasmPath = path.join(path.dirname(require.resolve('prisma/package.json')), 'build/schema_engine_bg.wasm');
    const glue = (await import('@prisma/schema-engine-wasm/schema_engine_bg')) as EngineGlue;
    const instance = new WebAssembly.Instance(new WebAssembly.Module(await fs.readFile(wasmPath)), {
      './schema_engine_bg.js': glue,
    });
    glue.__wbg_set_wasm(instance.exports);
    (instance.exports.__wbindgen_start as () => void)();
    return glue;
  })();
  return wasmReady;
}

/**
 * Runs `work` on a schema engine connected through `adapterFactory`. The engine does not close the
 * connections it opens (a PostgreSQL one would keep the migration advisory lock), so they are
 * tracked and disposed here.
 */
async function withEngine<T>(adapterFactory: SqlMigrationAwareDriverAdapterFactory, work: (engine: SchemaEngine) => Promise<T>): Promise<T> {
  const glue = await initialiseWasm();
  const opened: SqlDriverAdapter[] = [];
  const tracked: SqlMigrationAwareDriverAdapterFactory = {
    provider: adapterFactory.provider,
    adapterName: adapterFactory.adapterName,
    connect: async () => {
      const adapter = await adapterFactory.connect();
      opened.push(adapter);
      return adapter;
    },
    connectToShadowDb: async () => {
      const adapter = await adapterFactory.connectToShadowDb();
      opened.push(adapter);
      return adapter;
    },
  };
  const datamodel = await fs.readFile(schemaPath, 'utf8');
  const engine = await glue.SchemaEngine.new({ datamodels: [['schema.prisma', datamodel]] } as never, () => {}, bindMigrationAwareSqlAdapterFactory(tracked));
  try {
    return await work(engine);
  } finally {
    engine.free();
    await Promise.all(opened.map((adapter) => adapter.dispose()));
  }
}

export interface MigrationDirectory {
  name: string;
  sql: string;
}

export async function readMigrations(dir = migrationsDir): Promise<{ lockfile: string; migrations: MigrationDirectory[] }> {
  const entries = await fs.readdir(dir, { withFileTypes: true });
  const names = entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  const migrations = await Promise.all(names.map(async (name) => ({ name, sql: await fs.readFile(path.join(dir, name, 'migration.sql'), 'utf8') })));
  const lockfile = await fs.readFile(path.join(dir, 'migration_lock.toml'), 'utf8');
  return { lockfile, migrations };
}

function migrationsList(dir: string, lockfile: string, migrations: MigrationDirectory[]) {
  return {
    baseDir: dir,
    lockfile: { path: 'migration_lock.toml', content: lockfile },
    shadowDbInitScript: '',
    migrationDirectories: migrations.map((m) => ({
      path: m.name,
      migrationFile: { path: 'migration.sql', content: { tag: 'ok', value: m.sql } },
    })),
  };
}

const noFilters = { externalTables: [], externalEnums: [] };

/** Applies every committed migration not yet applied; returns the names it applied. */
export async function applyMigrations(adapterFactory: SqlMigrationAwareDriverAdapterFactory, dir = migrationsDir): Promise<string[]> {
  const { lockfile, migrations } = await readMigrations(dir);
  const result = await withEngine<{ appliedMigrationNames: string[] }>(adapterFactory, (engine) =>
    engine.applyMigrations({ migrationsList: migrationsList(dir, lockfile, migrations), filters: noFilters } as never),
  );
  return result.appliedMigrationNames;
}

/** SQL that takes a database at the state of the committed migrations to the current schema.prisma. */
/** Any fixed number; "Nyckel" in ASCII. */
const MIGRATION_LOCK_KEY = 0x4e79636b656c;

/**
 * applyMigrations for a node or the CLI. Nodes started together on a new database would race to
 * create the same tables: on a PostgreSQL server the migrations run under a session advisory lock,
 * so one migrates and the others wait and then find nothing left to do.
 */
export async function applyMigrationsExclusively(target: DatabaseTarget, adapterFactory: SqlMigrationAwareDriverAdapterFactory): Promise<string[]> {
  if (target.kind !== 'postgres') return applyMigrations(adapterFactory);
  const lock = new pg.Client({ connectionString: target.url });
  await lock.connect();
  try {
    await lock.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    return await applyMigrations(adapterFactory);
  } finally {
    await lock.end();
  }
}

export async function diffFromMigratedDatabase(adapterFactory: SqlMigrationAwareDriverAdapterFactory): Promise<string> {
  const datamodel = await fs.readFile(schemaPath, 'utf8');
  const files = [{ path: schemaPath, content: datamodel }];
  const result = (await withEngine(adapterFactory, (engine) =>
    engine.diff({
      from: { tag: 'schemaDatasource', files, configDir: path.dirname(schemaPath) },
      to: { tag: 'schemaDatamodel', files },
      script: true,
      exitCode: null,
      filters: noFilters,
    } as never),
  )) as { stdout: string };
  return result.stdout;
}

/** Names of committed migrations that are not recorded as applied in the database. */
export async function pendingMigrations(query: (sql: string) => Promise<Array<{ migration_name: string }>>, dir = migrationsDir): Promise<string[]> {
  const { migrations } = await readMigrations(dir);
  let applied: Set<string>;
  try {
    const rows = await query('SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL');
    applied = new Set(rows.map((r) => r.migration_name));
  } catch (error) {
    // No table yet means nothing applied; a server that went away is no answer at all.
    if (isStorageUnavailable(error)) throw error;
    applied = new Set();
  }
  return migrations.map((m) => m.name).filter((name) => !applied.has(name));
}
