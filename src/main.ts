// First: sets V8's wasm flags before any module compiles wasm.
import './wasm-baseline.ts';
import fs from 'node:fs';
import { ClientsFileError } from './clients/clients-file.ts';
import { loadSettings, SettingsError } from './config/settings.ts';
import { createLogger } from './logger.ts';
import { startNyckel } from './nyckel.ts';
import { ensureDemoUser } from './demo.ts';

if (fs.existsSync('.env')) process.loadEnvFile('.env');

async function main() {
  const settings = loadSettings();
  const logger = createLogger(settings.logLevel);
  const nyckel = await startNyckel(settings, { logger });
  logger.info({ issuer: nyckel.settings.issuer, database: nyckel.db.kind }, 'Nyckel is listening');

  if (settings.demo) await ensureDemoUser(nyckel);

  process.on('SIGHUP', () => {
    nyckel
      .reload()
      .then(() => logger.info('clients file and signing keys reloaded'))
      .catch((error) =>
        logger.error({ problems: (error as ClientsFileError).problems, err: error }, 'reload refused; the previous configuration stays in force'),
      );
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    nyckel.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((error) => {
  if (error instanceof SettingsError || error instanceof ClientsFileError) {
    console.error(error.message);
  } else {
    console.error('Nyckel could not start:', error instanceof Error ? error.message : error);
  }
  process.exit(1);
});
