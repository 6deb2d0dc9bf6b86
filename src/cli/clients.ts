import path from 'node:path';
import type { Command } from 'commander';
import { readClientsFile } from '../clients/clients-file.ts';
import { withKnownMethods } from '../factors/installed-methods.ts';
import { Factors } from '../factors/registry.ts';
import { settings } from './common.ts';

const count = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;

export function registerClientCommands(program: Command) {
  const clients = program.command('clients').description('the clients file (relying parties and resources)');

  clients
    .command('check [file]')
    .description('validate the clients file (default: NYCKEL_CLIENTS, else config/clients.yaml); needs no database')
    .action((file: string | undefined) => {
      const chosen = file ?? settings().clientsFile;
      // Problems throw ClientsFileError, which names each one's place in the file.
      const parsed = withKnownMethods(readClientsFile(chosen), chosen, new Factors());
      console.log(
        `OK: ${count(parsed.clients.length, 'client')}, ${count(parsed.resources.length, 'resource')} in ${path.relative(process.cwd(), chosen) || chosen}`,
      );
    });
}
