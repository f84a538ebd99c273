import fs from 'node:fs';

import type { Command } from 'commander';

import { CLIENT_AUTH_METHODS, MAX_ACCESS_TOKEN_TTL, MAX_SECRET_GRACE, MIN_ACCESS_TOKEN_TTL, TOKEN_EXCHANGE } from '../../domain/clients.js';
import { splitScope } from '../../domain/validation.js';
import { printing, tableOf, type Options, type Output, example } from '../output.js';
import { CliError } from '../run-command.js';
import { collect, runChecked, type CliContext } from './context.js';

/** A whole number of seconds as given, or NaN for anything else (the schema then names the option); null when absent. */
function seconds(value: unknown): number | null {
  if (value === undefined) return null;
  return typeof value === 'string' && /^\d{1,9}$/u.test(value) ? Number(value) : Number.NaN;
}

/** For a repeatable option with no default: each use adds one value (after a `--no-…`, to none). */
const collectFresh = (value: string, previous: unknown) => [...(Array.isArray(previous) ? (previous as string[]) : []), value];

const GRANT_HELP = `allowed grant (repeatable): client_credentials, password, authorization_code, refresh_token, ${TOKEN_EXCHANGE}`;
const EXCHANGE_HELP = `resource it may exchange the tokens sent to its --resource for (RFC 8693, with the ${TOKEN_EXCHANGE} grant; repeatable)`;
const POST_LOGOUT_HELP = 'where RP-initiated logout may send the browser back to, matched exactly (repeatable; with the authorization_code grant)';
const DPOP_HELP = 'refuse token requests without a DPoP proof (RFC 9449): every token is bound to the client\'s key';

const AUTH_HELP = `how it authenticates: ${CLIENT_AUTH_METHODS.join(', ')} (default: its secret, either way)`;
const JWKS_FILE_HELP = 'a JSON file with its public keys (a JWK Set), for --auth private_key_jwt';
const JWKS_URI_HELP = 'where it publishes its public keys (https, or http on loopback), for --auth private_key_jwt';
/** A key set file larger than this is no handful of public keys. */
const MAX_JWKS_FILE_BYTES = 64 * 1024;

/** The JWK Set in `file` (`--jwks-file`), parsed; the schema checks what is in it. */
function readJwksFile(file: string): unknown {
  let text: string;
  try {
    if (fs.statSync(file).size > MAX_JWKS_FILE_BYTES) throw new CliError(`--jwks-file ${file} is larger than ${MAX_JWKS_FILE_BYTES} bytes: a key set holds a few public keys`, 2);
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(`--jwks-file: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`, 2);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new CliError(`--jwks-file ${file} is not JSON (a JWK Set: {"keys": [...]})`, 2);
  }
}

/** The settings of `--auth`, `--jwks-file` and `--jwks-uri`, as given (`--auth default`: back to either secret method). */
function authenticationInput(options: Options): Record<string, unknown> {
  const auth = options['auth'];
  const file = options['jwksFile'];
  return {
    ...(auth === undefined ? {} : { auth: auth === 'default' ? null : auth }),
    ...(typeof file === 'string' ? { jwks: readJwksFile(file) } : {}),
    ...(options['jwksUri'] === undefined ? {} : { jwksUri: options['jwksUri'] }),
  };
}

/** How the client authenticates, for people. */
function describeAuth(r: Output): string {
  if (r['public'] === true) return 'none (public client)';
  if (r['auth'] === 'private_key_jwt') {
    const kids = Array.isArray(r['jwks_kids']) ? (r['jwks_kids'] as unknown[]).map(String) : [];
    return `private_key_jwt, keys ${r['jwks_uri'] === null ? `inline (kids ${kids.join(' ')})` : `at ${String(r['jwks_uri'])}`}`;
  }
  const method = r['auth'] === null ? 'client_secret_basic or client_secret_post' : String(r['auth']);
  return r['has_secret'] === false ? `${method} (no secret yet: clients rotate-secret gives it one)` : method;
}

/** The lines `show`, `update`, `disable` and `enable` print for people. */
function describeClient(r: Output): string {
  const list = (value: unknown) => (Array.isArray(value) && value.length > 0 ? value.join(' ') : '(none)');
  const lines = [
    `client_id:        ${String(r['client_id'])}`,
    `name:             ${String(r['name'])}`,
    `status:           ${r['disabled'] === true ? `disabled since ${String(r['disabled_at'])}` : 'enabled'}`,
    `type:             ${r['public'] === true ? 'public' : 'confidential'}${r['first_party'] === true ? ', first-party' : ''}`,
    `grants:           ${list(r['grants'])}`,
    `scope:            ${String(r['scope']) || '(none)'}`,
    `roles:            ${list(r['roles'])}`,
    `redirect_uris:    ${list(r['redirect_uris'])}`,
    // post_logout_redirect_uris, shortened to keep the column
    `post_logout_uris: ${list(r['post_logout_redirect_uris'])}`,
    `resources:        ${list(r['resources'])}`,
    `access_token_ttl: ${r['access_token_ttl'] === null ? '(ACCESS_TOKEN_TTL)' : String(r['access_token_ttl'])}`,
    `auth:             ${describeAuth(r)}`,
    `require_dpop:     ${r['require_dpop'] === true ? 'yes (token requests need a DPoP proof)' : 'no'}`,
    `may_exchange_for: ${list(r['may_exchange_for'])}`,
    `created_at:       ${String(r['created_at'])}`,
  ];
  if (r['secret_rotated_at'] !== null) lines.push(`secret rotated:   ${String(r['secret_rotated_at'])}`);
  if (r['previous_secret_expires_at'] !== null) lines.push(`previous secret:  accepted until ${String(r['previous_secret_expires_at'])}`);
  return lines.join('\n');
}

/** The input of `clients update` from its options: only what was given; a `--no-…` empties its list. */
function updateInput(id: string, options: Options): Record<string, unknown> {
  const list = (value: unknown) => (value === false ? [] : value);
  const ttl = options['accessTokenTtl'];
  return {
    id,
    name: options['name'],
    grants: list(options['grant']),
    scopes: options['scope'] === undefined ? undefined : splitScope(options['scope'] as string),
    roles: list(options['role']),
    redirectUris: list(options['redirectUri']),
    postLogoutRedirectUris: list(options['postLogoutRedirectUri']),
    resources: list(options['resource']),
    // a client stays public or confidential: --public on a confidential one is refused
    public: options['public'] === true ? true : undefined,
    firstParty: options['firstParty'],
    accessTokenTtl: ttl === undefined ? undefined : ttl === 'default' ? null : seconds(ttl),
    ...authenticationInput(options),
    requireDpop: options['requireDpop'],
    mayExchangeFor: list(options['mayExchangeFor']),
  };
}

function addUpdateCommand(clients: Command, context: CliContext): void {
  printing(
    clients
      .command('update')
      .description('change a client\'s settings (create\'s flags; a list given replaces the list); on a bad value nothing changes').addHelpText('after', example('sigil clients update 9b1deb4d3b7d4bad9bdd2b0d7b3dcb6d --scope "orders:read" --access-token-ttl 300'))
      .argument('<client_id>')
      .option('--name <name>', 'display name')
      .option('--grant <grant>', GRANT_HELP, collectFresh)
      .option('--no-grant', 'no grant: a resource service\'s own client (introspection only)')
      .option('--scope <scopes>', 'space-separated scopes the client may request ("": none)')
      .option('--role <role>', 'role carried in client-credentials tokens (repeatable)', collectFresh)
      .option('--no-role', 'no roles')
      .option('--redirect-uri <uri>', 'redirect URI, matched exactly (repeatable)', collectFresh)
      .option('--no-redirect-uri', 'no redirect URI')
      .option('--post-logout-redirect-uri <uri>', POST_LOGOUT_HELP, collectFresh)
      .option('--no-post-logout-redirect-uri', 'no post-logout redirect URI: logout ends on Sigil\'s signed-out page')
      .option('--resource <uri>', 'resource (audience) the client may get tokens for; the first is the default (repeatable)', collectFresh)
      .option('--no-resource', 'no resource')
      .option('--public', 'accepted for a public client; a confidential client cannot become public')
      .option('--first-party', 'a first-party client: no consent page')
      .option('--no-first-party', 'a third-party client: the consent page is shown')
      .option(
        '--access-token-ttl <seconds>',
        `lifetime of its access tokens, ${MIN_ACCESS_TOKEN_TTL} to ${MAX_ACCESS_TOKEN_TTL} seconds, or "default" for ACCESS_TOKEN_TTL`,
      )
      .option('--auth <method>', `${AUTH_HELP}, or "default"; leaving private_key_jwt drops its keys, and a secret comes from rotate-secret; taking it up drops its secret`)
      .option('--jwks-file <file>', `${JWKS_FILE_HELP} (replaces its keys)`)
      .option('--jwks-uri <uri>', `${JWKS_URI_HELP} (replaces its keys)`)
      .option('--require-dpop', DPOP_HELP)
      .option('--no-require-dpop', 'token requests without a DPoP proof get bearer tokens')
      .option('--may-exchange-for <uri>', EXCHANGE_HELP, collectFresh)
      .option('--no-may-exchange-for', 'no token exchange target'),
    (options, id: string) => runChecked(context, 'clients.update', updateInput(id, options)),
    describeClient,
  );
}

export function addClientsCommands(program: Command, context: CliContext): void {
  const clients = program.command('clients').description('OAuth clients').addHelpText('after', example('sigil clients list'));
  printing(
    clients
      .command('create')
      .description('register a client; its secret is printed once').addHelpText('after', example('sigil clients create --name billing --grant client_credentials --scope "orders:read orders:write" --resource https://orders.example.com'))
      .requiredOption('--name <name>', 'display name')
      .option('--grant <grant>', `${GRANT_HELP}; none: a resource service's own client (introspection only)`, collect, [])
      .option('--scope <scopes>', 'space-separated scopes the client may request')
      .option('--role <role>', 'role carried in client-credentials tokens (repeatable)', collect, [])
      .option('--redirect-uri <uri>', 'redirect URI, matched exactly (repeatable)', collect, [])
      .option('--post-logout-redirect-uri <uri>', POST_LOGOUT_HELP, collect, [])
      .option('--resource <uri>', 'resource (audience) the client may get tokens for; the first is the default (repeatable)', collect, [])
      .option('--public', 'a public client (no secret; authorization code with PKCE only)')
      .option('--first-party', 'a first-party client: no consent page')
      .option('--access-token-ttl <seconds>', `lifetime of its access tokens, ${MIN_ACCESS_TOKEN_TTL} to ${MAX_ACCESS_TOKEN_TTL} seconds (default: ACCESS_TOKEN_TTL)`)
      .option('--auth <method>', `${AUTH_HELP}; private_key_jwt: no secret, its keys instead`)
      .option('--jwks-file <file>', JWKS_FILE_HELP)
      .option('--jwks-uri <uri>', JWKS_URI_HELP)
      .option('--require-dpop', DPOP_HELP)
      .option('--may-exchange-for <uri>', EXCHANGE_HELP, collect, []),
    (options) => {
      const input = {
        name: options['name'],
        grants: options['grant'],
        scopes: splitScope(options['scope'] as string | undefined),
        roles: options['role'],
        redirectUris: options['redirectUri'],
        postLogoutRedirectUris: options['postLogoutRedirectUri'],
        resources: options['resource'],
        public: options['public'] === true,
        firstParty: options['firstParty'] === true,
        accessTokenTtl: seconds(options['accessTokenTtl']),
        ...authenticationInput(options),
        requireDpop: options['requireDpop'] === true,
        mayExchangeFor: options['mayExchangeFor'],
      };
      // the client's full record stays out: --json prints exactly its id and its secret
      return runChecked(context, 'clients.create', input, 'client');
    },
    (r) =>
      [
        `client_id:     ${String(r['client_id'])}`,
        r['client_secret'] === undefined
          ? 'client_secret: (none: a public client, or one that authenticates with its keys)'
          : `client_secret: ${String(r['client_secret'])}\n\nThe secret is shown only now; Sigil keeps only its hash.`,
      ].join('\n'),
  );
  printing(
    clients.command('list').description('list registered clients').addHelpText('after', example('sigil clients list')),
    () => context.database('clients.list', {}),
    tableOf('clients', ['client_id', 'name', 'grants', 'scope', 'roles', 'redirect_uris', 'resources', 'auth', 'disabled', 'access_token_ttl']),
  );
  printing(
    clients.command('show').description('show one client (never its secret)').addHelpText('after', example('sigil clients show 9b1deb4d3b7d4bad9bdd2b0d7b3dcb6d')).argument('<client_id>'),
    (_options, id: string) => runChecked(context, 'clients.show', { id }),
    describeClient,
  );
  addUpdateCommand(clients, context);
  printing(
    clients
      .command('disable')
      .description('refuse the client everywhere at once, and revoke every grant it holds (its refresh tokens never work again) and every access token issued to it').addHelpText('after', example('sigil clients disable 9b1deb4d3b7d4bad9bdd2b0d7b3dcb6d'))
      .argument('<client_id>'),
    (_options, id: string) => runChecked(context, 'clients.disable', { id }),
    (r) => `${String(r['client_id'])}: disabled; its grants and access tokens are revoked`,
  );
  printing(
    clients.command('enable').description('accept a disabled client again (the grants and access tokens revoked when it was disabled stay revoked)').addHelpText('after', example('sigil clients enable 9b1deb4d3b7d4bad9bdd2b0d7b3dcb6d')).argument('<client_id>'),
    (_options, id: string) => runChecked(context, 'clients.enable', { id }),
    (r) => `${String(r['client_id'])}: enabled`,
  );
  printing(
    clients.command('delete').description('delete a client and revoke every grant it holds and every access token issued to it').addHelpText('after', example('sigil clients delete 9b1deb4d3b7d4bad9bdd2b0d7b3dcb6d')).argument('<client_id>'),
    (_options, id: string) => runChecked(context, 'clients.delete', { id }),
    (r) => `deleted client ${String(r['client_id'])} (${String(r['name'])}); its grants and access tokens are revoked`,
  );
  printing(
    clients
      .command('rotate-secret')
      .description('give a confidential client a new secret, printed once').addHelpText('after', example('sigil clients rotate-secret 9b1deb4d3b7d4bad9bdd2b0d7b3dcb6d --grace 3600'))
      .argument('<client_id>')
      .option('--grace <seconds>', `seconds the old secret keeps working, 0 to ${MAX_SECRET_GRACE} (default 0: it stops at once)`),
    (options, id: string) => {
      const grace = options['grace'];
      // the client's full record stays out: --json prints exactly its id and its new secret
      return runChecked(context, 'clients.rotate-secret', { id, graceSeconds: grace === undefined ? undefined : seconds(grace) }, 'client');
    },
    (r) =>
      [
        `client_id:     ${String(r['client_id'])}`,
        `client_secret: ${String(r['client_secret'])}`,
        '',
        'The secret is shown only now; Sigil keeps only its hash.',
      ].join('\n'),
  );
}
