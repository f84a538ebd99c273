import type { Command } from 'commander';

import { MAX_ACCESS_TOKEN_TTL, MIN_ACCESS_TOKEN_TTL } from '../../domain/clients.js';
import { splitScope } from '../../domain/validation.js';
import { printing, tableOf } from '../output.js';
import { collect, runChecked, type CliContext } from './context.js';

/** A whole number of seconds as given, or NaN for anything else (the schema then names the option); null when absent. */
function seconds(value: unknown): number | null {
  if (value === undefined) return null;
  return typeof value === 'string' && /^\d{1,9}$/u.test(value) ? Number(value) : Number.NaN;
}

export function addClientsCommands(program: Command, context: CliContext): void {
  const clients = program.command('clients').description('OAuth clients');
  printing(
    clients
      .command('create')
      .description('register a client; its secret is printed once')
      .requiredOption('--name <name>', 'display name')
      .option(
        '--grant <grant>',
        'allowed grant (repeatable): client_credentials, password, authorization_code, refresh_token; none: a resource service\'s own client (introspection only)',
        collect,
        [],
      )
      .option('--scope <scopes>', 'space-separated scopes the client may request')
      .option('--role <role>', 'role carried in client-credentials tokens (repeatable)', collect, [])
      .option('--redirect-uri <uri>', 'redirect URI, matched exactly (repeatable)', collect, [])
      .option('--resource <uri>', 'resource (audience) the client may get tokens for; the first is the default (repeatable)', collect, [])
      .option('--public', 'a public client (no secret; authorization code with PKCE only)')
      .option('--first-party', 'a first-party client: no consent page')
      .option('--access-token-ttl <seconds>', `lifetime of its access tokens, ${MIN_ACCESS_TOKEN_TTL} to ${MAX_ACCESS_TOKEN_TTL} seconds (default: ACCESS_TOKEN_TTL)`),
    (options) => {
      const input = {
        name: options['name'],
        grants: options['grant'],
        scopes: splitScope(options['scope'] as string | undefined),
        roles: options['role'],
        redirectUris: options['redirectUri'],
        resources: options['resource'],
        public: options['public'] === true,
        firstParty: options['firstParty'] === true,
        accessTokenTtl: seconds(options['accessTokenTtl']),
      };
      // the client's full record stays out: --json prints exactly its id and its secret
      return runChecked(context, 'clients.create', input, 'client');
    },
    (r) =>
      [
        `client_id:     ${String(r['client_id'])}`,
        r['client_secret'] === undefined
          ? 'client_secret: (none: public client)'
          : `client_secret: ${String(r['client_secret'])}\n\nThe secret is shown only now; Sigil keeps only its hash.`,
      ].join('\n'),
  );
  printing(
    clients.command('list').description('list registered clients'),
    () => context.database('clients.list', {}),
    tableOf('clients', ['client_id', 'name', 'grants', 'scope', 'roles', 'resources', 'access_token_ttl']),
  );
}
