import type { Command } from 'commander';

import { splitScope } from '../../domain/validation.js';
import { printing, table, type Output, example } from '../output.js';
import { collect, runChecked, type CliContext } from './context.js';

/** Seconds as given; anything but digits becomes NaN, which the schema refuses with its own message. */
function seconds(value: string | undefined): number | undefined {
  return value === undefined ? undefined : /^\d+$/u.test(value) ? Number(value) : Number.NaN;
}

const API_KEY_COLUMNS = ['id', 'name', 'owner', 'resources', 'scope', 'roles', 'expires_at', 'last_used_at', 'revoked_at'];

/** A key without resources is refused everywhere: its row says so, and how to fix it. */
function markResourceless(row: Output): Output {
  return row['needs_resources'] === true ? { ...row, resources: 'NONE (refused; api-keys update <id> --resource URI)' } : row;
}

export function addApiKeysCommands(program: Command, context: CliContext): void {
  const apiKeys = program.command('api-keys').description('API keys for machine callers of resource services').addHelpText('after', example('sigil api-keys list'));
  printing(
    apiKeys
      .command('create')
      .description('create an API key; the key is printed once').addHelpText('after', example('sigil api-keys create --name ci-bot --owner platform --resource https://orders.example.com --scope orders:read --expires-in 2592000'))
      .requiredOption('--name <name>', 'display name')
      .option('--owner <owner>', 'who the key belongs to (team, service or person)')
      .option('--resource <uri>', 'audience of a service that accepts the key (required, repeatable)', collect, [])
      .option('--scope <scopes>', 'space-separated scopes the key carries')
      .option('--role <role>', 'role the key carries (repeatable)', collect, [])
      .option('--expires-in <seconds>', 'lifetime in seconds (default: no expiry)'),
    (options) => {
      const input = {
        name: options['name'],
        owner: options['owner'],
        resources: options['resource'],
        scopes: splitScope(options['scope'] as string | undefined),
        roles: options['role'],
        expiresIn: seconds(options['expiresIn'] as string | undefined),
      };
      return runChecked(context, 'api-keys.create', input, 'api_key');
    },
    (r) => [`id:  ${String(r['id'])}`, `key: ${String(r['key'])}`, '', 'The key is shown only now; Sigil keeps only its hash.'].join('\n'),
  );
  printing(
    apiKeys.command('list').description('list API keys (never the keys themselves)').addHelpText('after', example('sigil api-keys list')),
    () => context.database('api-keys.list', {}),
    (result) => table((result['api_keys'] as Output[]).map(markResourceless), API_KEY_COLUMNS),
  );
  printing(
    apiKeys
      .command('update')
      .description("replace an API key's resources (the services that accept it)").addHelpText('after', example('sigil api-keys update 5f0c2a9e8d7b4c3a9e1f6b2d8c4a7e3f --resource https://orders.example.com --resource https://billing.example.com'))
      .argument('<id>', 'the API key id')
      .option('--resource <uri>', 'audience of a service that accepts the key (required, repeatable)', collect, []),
    (options, id: string) => runChecked(context, 'api-keys.update', { id, resources: options['resource'] }),
    (r) => `${String(r['id'])} is accepted by ${(r['resources'] as string[]).join(', ')}`,
  );
  printing(
    apiKeys
      .command('rotate')
      .description('give an API key a new value, printed once; the old value stops working (resource services: within their cache time)')
      .addHelpText('after', example('sigil api-keys rotate 5f0c2a9e8d7b4c3a9e1f6b2d8c4a7e3f'))
      .argument('<id>', 'the API key id'),
    (_options, id: string) => runChecked(context, 'api-keys.rotate', { id }, 'api_key'),
    (r) => [`id:  ${String(r['id'])}`, `key: ${String(r['key'])}`, '', 'The key is shown only now; Sigil keeps only its hash.'].join('\n'),
  );
  printing(
    apiKeys
      .command('revoke')
      .description('revoke an API key; resource services refuse it within their cache time').addHelpText('after', example('sigil api-keys revoke 5f0c2a9e8d7b4c3a9e1f6b2d8c4a7e3f'))
      .argument('<id>', 'the API key id'),
    (_options, id: string) => runChecked(context, 'api-keys.revoke', { id }),
    (r) => `revoked ${String(r['id'])} at ${String(r['revoked_at'])}`,
  );
}
