import { Command, CommanderError } from 'commander';
import type { z } from 'zod';

import { AdminInputError, adminCommands, describeInputError, type AdminCommandName } from '../admin/commands.js';
import { ConfigError, loadConfig, type Config } from '../config.js';
import { newApiKeySchema } from '../domain/api-keys.js';
import { newClientSchema } from '../domain/clients.js';
import { newUserSchema } from '../domain/users.js';
import { splitScope } from '../domain/validation.js';
import { generateKey, KeyRequestError, KeyStoreError, readKeys, retireKey, rotateKeys } from '../keys/key-store.js';
import { CliError, runDatabaseCommand } from './run-command.js';

type Output = Record<string, unknown>;

interface JsonFlag {
  json?: boolean;
}

const collect = (value: string, previous: string[]) => [...previous, value];

/** The password from standard input: its first line, without the line break. */
async function readPassword(): Promise<string> {
  if (process.stdin.isTTY) throw new CliError('--password-stdin needs the password piped in (e.g. printf %s "$PASSWORD" | sigil …)', 2);
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/u)[0] ?? '';
}

function print(result: Output, json: boolean | undefined, human: (result: Output) => string): void {
  process.stdout.write(json === true ? `${JSON.stringify(result)}\n` : `${human(result)}\n`);
}

function table(rows: Record<string, unknown>[], columns: string[]): string {
  if (rows.length === 0) return '(none)';
  const cell = (value: unknown) => (Array.isArray(value) ? value.join(',') : String(value ?? ''));
  const widths = columns.map((column) => Math.max(column.length, ...rows.map((row) => cell(row[column]).length)));
  const line = (values: string[]) => values.map((value, i) => value.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(columns), ...rows.map((row) => line(columns.map((column) => cell(row[column]))))].join('\n');
}

/** Validates locally first, so bad arguments never reach the database (exit 2). */
function validated<T>(schema: z.ZodType<T>, input: unknown): T {
  const parsed = schema.safeParse(input);
  if (!parsed.success) throw new CliError(describeInputError(parsed.error), 2);
  return parsed.data;
}

function buildProgram(config: () => Config): Command {
  const program = new Command('sigil')
    .description('Administer a Sigil authorization server')
    .showSuggestionAfterError(false)
    .exitOverride()
    .configureOutput({
      outputError: (message, write) => write(`sigil: ${message.replace(/^error: /u, '').trim()}\n`),
    });

  const database = (name: AdminCommandName, input: unknown) => runDatabaseCommand(config(), name, input);

  program
    .command('migrate')
    .description('apply pending migrations to the configured database')
    .option('--json', 'print one JSON object')
    .action(async (options: JsonFlag) => {
      const result = await database('migrate', {});
      print(result, options.json, (r) => {
        const applied = r['applied'] as string[];
        return applied.length === 0 ? 'database is up to date' : `applied: ${applied.join(', ')}`;
      });
    });

  const keys = program.command('keys').description('signing key lifecycle');
  keys
    .command('list')
    .description('list signing keys and their states')
    .option('--json', 'print one JSON object')
    .action(async (options: JsonFlag) => {
      const stored = await readKeys(config().keysDir);
      const result = {
        keys: stored.map((key) => ({
          kid: key.jwk.kid,
          state: key.state,
          alg: key.jwk.alg,
          created_at: key.createdAt,
          ...(key.retiredAt === undefined ? {} : { retired_at: key.retiredAt }),
        })),
      };
      print(result, options.json, (r) => table(r['keys'] as Output[], ['kid', 'state', 'alg', 'created_at', 'retired_at']));
    });
  keys
    .command('generate')
    .description('add a "next" key: published in the JWKS now, signing after the next rotation (the first key is "current")')
    .option('--json', 'print one JSON object')
    .action(async (options: JsonFlag) => {
      const key = await generateKey(config().keysDir);
      print({ kid: key.jwk.kid, state: key.state, alg: key.jwk.alg, created_at: key.createdAt }, options.json, (r) =>
        `generated key ${String(r['kid'])} (state ${String(r['state'])})`,
      );
    });

  keys
    .command('rotate')
    .description('next → current, current → retired, and a new next; running issuers follow within seconds')
    .option('--json', 'print one JSON object')
    .action(async (options: JsonFlag) => {
      const { current, retired, next } = await rotateKeys(config().keysDir);
      print({ current: current.jwk.kid, retired: retired?.jwk.kid ?? null, next: next.jwk.kid }, options.json, (r) =>
        [`current: ${String(r['current'])}`, `retired: ${String(r['retired'] ?? '(none)')}`, `next:    ${String(r['next'])}`].join('\n'),
      );
    });
  keys
    .command('retire')
    .description('retire a next key (the current key is replaced by rotate)')
    .argument('<kid>', 'the key id')
    .option('--json', 'print one JSON object')
    .action(async (kid: string, options: JsonFlag) => {
      const key = await retireKey(config().keysDir, kid);
      print({ kid: key.jwk.kid, state: key.state, retired_at: key.retiredAt }, options.json, (r) => `retired ${String(r['kid'])}`);
    });

  const clients = program.command('clients').description('OAuth clients');
  clients
    .command('create')
    .description('register a client; its secret is printed once')
    .requiredOption('--name <name>', 'display name')
    .option('--grant <grant>', 'allowed grant (repeatable): client_credentials, password, authorization_code, refresh_token', collect, [])
    .option('--scope <scopes>', 'space-separated scopes the client may request')
    .option('--role <role>', 'role carried in client-credentials tokens (repeatable)', collect, [])
    .option('--redirect-uri <uri>', 'redirect URI, matched exactly (repeatable)', collect, [])
    .option('--resource <uri>', 'resource (audience) the client may get tokens for; the first is the default (repeatable)', collect, [])
    .option('--public', 'a public client (no secret; authorization code with PKCE only)')
    .option('--first-party', 'a first-party client: no consent page')
    .option('--json', 'print one JSON object')
    .action(async (options: JsonFlag & Record<string, unknown>) => {
      const input = validated(newClientSchema, {
        name: options['name'],
        grants: options['grant'],
        scopes: splitScope(options['scope'] as string | undefined),
        roles: options['role'],
        redirectUris: options['redirectUri'],
        resources: options['resource'],
        public: options['public'] === true,
        firstParty: options['firstParty'] === true,
      });
      const result = await database('clients.create', input);
      const { client: _client, ...shown } = result;
      print(options.json === true ? shown : result, options.json, (r) =>
        [
          `client_id:     ${String(r['client_id'])}`,
          r['client_secret'] === undefined
            ? 'client_secret: (none: public client)'
            : `client_secret: ${String(r['client_secret'])}\n\nThe secret is shown only now; Sigil keeps only its hash.`,
        ].join('\n'),
      );
    });
  clients
    .command('list')
    .description('list registered clients')
    .option('--json', 'print one JSON object')
    .action(async (options: JsonFlag) => {
      const result = await database('clients.list', {});
      print(result, options.json, (r) =>
        table(r['clients'] as Output[], ['client_id', 'name', 'grants', 'scope', 'roles', 'resources']),
      );
    });

  const users = program.command('users').description('people who sign in');
  users
    .command('create')
    .description('create a user; the password is read from standard input')
    .requiredOption('--username <username>', 'unique, case-insensitively')
    .option('--password-stdin', 'read the password from standard input (the only way to give it)')
    .option('--role <role>', 'role carried in the user\'s tokens (repeatable)', collect, [])
    .option('--email <email>', 'email address (the email claim)')
    .option('--json', 'print one JSON object')
    .action(async (options: JsonFlag & Record<string, unknown>) => {
      if (options['passwordStdin'] !== true) {
        throw new CliError('the password is read from standard input: pass --password-stdin', 2);
      }
      const input = validated(newUserSchema, {
        username: options['username'],
        password: await readPassword(),
        roles: options['role'],
        email: options['email'],
      });
      const result = await database('users.create', input);
      const { user: _view, ...shown } = result;
      print(shown, options.json, (r) => `created user ${String(r['username'])} (${String(r['id'])})`);
    });
  users
    .command('list')
    .description('list users')
    .option('--json', 'print one JSON object')
    .action(async (options: JsonFlag) => {
      const result = await database('users.list', {});
      print(result, options.json, (r) => table(r['users'] as Output[], ['id', 'username', 'email', 'roles', 'disabled']));
    });
  users
    .command('set-roles')
    .description('replace a user\'s roles (none given: no roles)')
    .argument('<username>')
    .argument('[roles...]')
    .option('--json', 'print one JSON object')
    .action(async (username: string, roles: string[], options: JsonFlag) => {
      const result = await database('users.set-roles', validated(adminCommands['users.set-roles'].input, { username, roles }));
      print(result, options.json, (r) => `${String(r['username'])}: ${(r['roles'] as string[]).join(' ') || '(no roles)'}`);
    });
  users
    .command('disable')
    .description('stop a user from signing in (existing tokens run out; refresh stops)')
    .argument('<username>')
    .option('--enable', 'allow sign-in again instead')
    .option('--json', 'print one JSON object')
    .action(async (username: string, options: JsonFlag & { enable?: boolean }) => {
      const disabled = options.enable !== true;
      const result = await database('users.disable', validated(adminCommands['users.disable'].input, { username, disabled }));
      print(result, options.json, (r) => `${String(r['username'])}: ${r['disabled'] === true ? 'disabled' : 'enabled'}`);
    });

  const apiKeys = program.command('api-keys').description('API keys for machine callers of resource services');
  apiKeys
    .command('create')
    .description('create an API key; the key is printed once')
    .requiredOption('--name <name>', 'display name')
    .option('--owner <owner>', 'who the key belongs to (team, service or person)')
    .option('--scope <scopes>', 'space-separated scopes the key carries')
    .option('--role <role>', 'role the key carries (repeatable)', collect, [])
    .option('--expires-in <seconds>', 'lifetime in seconds (default: no expiry)')
    .option('--json', 'print one JSON object')
    .action(async (options: JsonFlag & Record<string, unknown>) => {
      const expiresIn = options['expiresIn'] as string | undefined;
      const input = validated(newApiKeySchema, {
        name: options['name'],
        owner: options['owner'],
        scopes: splitScope(options['scope'] as string | undefined),
        roles: options['role'],
        expiresIn: expiresIn === undefined ? undefined : /^\d+$/u.test(expiresIn) ? Number(expiresIn) : Number.NaN,
      });
      const result = await database('api-keys.create', input);
      const { api_key: _view, ...shown } = result;
      print(shown, options.json, (r) =>
        [`id:  ${String(r['id'])}`, `key: ${String(r['key'])}`, '', 'The key is shown only now; Sigil keeps only its hash.'].join('\n'),
      );
    });
  apiKeys
    .command('list')
    .description('list API keys (never the keys themselves)')
    .option('--json', 'print one JSON object')
    .action(async (options: JsonFlag) => {
      const result = await database('api-keys.list', {});
      print(result, options.json, (r) =>
        table(r['api_keys'] as Output[], ['id', 'name', 'owner', 'scope', 'roles', 'expires_at', 'last_used_at', 'revoked_at']),
      );
    });
  apiKeys
    .command('revoke')
    .description('revoke an API key; resource services refuse it within their cache time')
    .argument('<id>', 'the API key id')
    .option('--json', 'print one JSON object')
    .action(async (id: string, options: JsonFlag) => {
      const result = await database('api-keys.revoke', validated(adminCommands['api-keys.revoke'].input, { id }));
      print(result, options.json, (r) => `revoked ${String(r['id'])} at ${String(r['revoked_at'])}`);
    });

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
  const program = buildProgram(config);
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
      process.stderr.write(`sigil: ${error.message}\n`);
      return error.exitCode;
    }
    if (error instanceof ConfigError || error instanceof AdminInputError) {
      process.stderr.write(`sigil: ${error.message}\n`);
      return 2;
    }
    if (error instanceof KeyStoreError) {
      process.stderr.write(`sigil: ${error.message}\n`);
      return error instanceof KeyRequestError ? 2 : 1;
    }
    process.stderr.write(`sigil: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}
