import type { Command } from 'commander';
import { openDatabase, settings } from './common.ts';

export function registerDatabaseCommands(program: Command) {
  const db = program.command('db').description('the database');

  db.command('migrate')
    .description('apply the migrations not yet applied (the server also does this at start)')
    .action(async () => {
      const config = settings();
      const database = await openDatabase(config);
      let applied: string[];
      try {
        const { applyMigrationsExclusively } = await import('../storage/migrate.ts');
        const { databaseTarget } = await import('../storage/db.ts');
        applied = await applyMigrationsExclusively(databaseTarget(config), database.adapterFactory);
      } finally {
        await database.close();
      }
      const where = database.kind === 'postgres' ? 'PostgreSQL (DATABASE_URL)' : `the embedded database in ${config.dataDir}`;
      if (applied.length === 0) console.log(`${where} is up to date`);
      else console.log(`applied to ${where}:\n${applied.map((name) => `  ${name}`).join('\n')}`);
    });
}
