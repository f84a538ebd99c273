import { Command, CommanderError } from 'commander';

import { AdminInputError } from '../admin/commands.js';
import { ConfigError, loadConfig, type Config } from '../config.js';
import { KeyRequestError, KeyStoreError } from '../keys/key-store.js';
import { addApiKeysCommands } from './commands/api-keys.js';
import { addAuditCommands } from './commands/audit.js';
import { addClientsCommands } from './commands/clients.js';
import type { CliContext } from './commands/context.js';
import { addDoctorCommand } from './commands/doctor.js';
import { addKeysCommands } from './commands/keys.js';
import { addMigrateCommand } from './commands/migrate.js';
import { addUsersCommands } from './commands/users.js';
import { escapeControls, example } from './output.js';
import { CliError, readPassword, runDatabaseCommand, runKeysCommand } from './run-command.js';
import { issuerVersion } from './version.js';

/** The program with every command group, running its commands through `context`. */
export function buildProgram(context: CliContext): Command {
  const program = new Command('sigil')
    .description('Administer a Sigil authorization server')
    .version(issuerVersion(), '-V, --version', 'print the version of Sigil')
    .showSuggestionAfterError(false)
    .exitOverride()
    .configureOutput({
      outputError: (message, write) => write(`sigil: ${message.replace(/^error: /u, '').trim()}\n`),
    })
    .addHelpText('after', example('sigil clients create --name billing --grant client_credentials --resource https://orders.example.com'));
  addMigrateCommand(program, context);
  addKeysCommands(program, context);
  addClientsCommands(program, context);
  addUsersCommands(program, context);
  addApiKeysCommands(program, context);
  addAuditCommands(program, context);
  addDoctorCommand(program, context);
  return program;
}

/** A key id: an RFC 7638 thumbprint, 43 base64url characters (it may begin with "-"). */
const KID = /^[A-Za-z0-9_-]{43}$/u;

/**
 * A kid that begins with "-" would be read as an option; `keys retire` moves kids behind
 * "--" so that they are always taken as its argument.
 */
export function protectKids(argv: string[]): string[] {
  if (argv[0] !== 'keys' || argv[1] !== 'retire' || argv.includes('--')) return argv;
  const rest = argv.slice(2);
  const kids = rest.filter((arg) => arg.startsWith('-') && KID.test(arg));
  return kids.length === 0 ? argv : [...argv.slice(0, 2), ...rest.filter((arg) => !kids.includes(arg)), '--', ...kids];
}

/** Runs the CLI; returns the process exit code. */
export async function runCli(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  let loaded: Config | undefined;
  const config = () => (loaded ??= loadConfig(env, process.cwd(), 'admin'));
  const program = buildProgram({
    config,
    database: (name, input) => runDatabaseCommand(config(), name, input),
    keys: (name, input) => runKeysCommand(config(), name, input),
    password: readPassword,
  });
  try {
    if (argv.length === 0) {
      program.outputHelp();
      return 2;
    }
    await program.parseAsync(protectKids(argv), { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? 0 : 2;
    }
    if (error instanceof CliError) {
      process.stderr.write(`sigil: ${escapeControls(error.message)}\n`);
      return error.exitCode;
    }
    if (error instanceof ConfigError || error instanceof AdminInputError) {
      process.stderr.write(`sigil: ${escapeControls(error.message)}\n`);
      return 2;
    }
    if (error instanceof KeyStoreError) {
      process.stderr.write(`sigil: ${escapeControls(error.message)}\n`);
      return error instanceof KeyRequestError ? 2 : 1;
    }
    process.stderr.write(`sigil: ${escapeControls(error instanceof Error ? error.message : String(error))}\n`);
    return 1;
  }
}
