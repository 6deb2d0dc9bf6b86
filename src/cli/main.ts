import { Command, CommanderError } from 'commander';
import { registerBankIdCommands } from './bankid.ts';
import { registerClientCommands } from './clients.ts';
import { describeExpectedError } from './common.ts';
import { registerDatabaseCommands } from './db.ts';
import { registerKeyCommands } from './keys.ts';
import { registerAuditCommands } from './operator.ts';
import { registerUserCommands } from './users.ts';

/**
 * `nyckel`, the operator CLI. Exit status: 0 done, 1 the command failed (one line on stderr),
 * 2 the command line was wrong.
 */
export function buildProgram(): Command {
  const program = new Command('nyckel')
    .description('Nyckel operator commands. Settings come from the environment and ./.env, as for the server.')
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(`nyckel: ${text.replace(/^error: /, '')}`) });
  // Subcommands inherit the settings above: register them after.
  registerUserCommands(program);
  registerBankIdCommands(program);
  registerClientCommands(program);
  registerDatabaseCommands(program);
  registerKeyCommands(program);
  registerAuditCommands(program);
  return program;
}

export async function run(argv: string[] = process.argv): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    // A command that did part of its work (users import with bad rows) sets a failure status itself.
    return process.exitCode ? Number(process.exitCode) : 0;
  } catch (error) {
    // Commander has already printed its message (or the help).
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    const message = describeExpectedError(error);
    if (message !== undefined) {
      console.error(`nyckel: ${message}`);
    } else {
      // Still one line (Prisma's messages span several), and no stack trace.
      const text = error instanceof Error ? error.message : String(error);
      console.error(
        `nyckel: unexpected error: ${text
          .split('\n')
          .map((line) => line.trim())
          .filter(Boolean)
          .join(' ')}`,
      );
    }
    return 1;
  }
}

const status = await run();
// Exit at once rather than when the event loop drains: Prisma's wasm schema engine leaves a
// 10-second timer behind after migrating. Written output is flushed first.
await Promise.all([process.stdout, process.stderr].map((stream) => new Promise((resolve) => stream.write('', resolve))));
process.exit(status);
