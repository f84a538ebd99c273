import fs from 'node:fs/promises';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import { backends, type TestDatabase } from '../support/backends.js';
import { sigil, sigilJson } from '../support/cli.js';
import { basicAuth } from '../support/http.js';
import { issuerSuite, testEnv } from '../support/issuer.js';

interface ClientList {
  clients: { client_id: string; name: string; grants: string[]; scope: string; roles: string[]; resources: string[] }[];
}

const NEEDS_RESOURCE = 'an API key needs at least one --resource (the audience of each service that accepts it)';
const GRANT_RULE = 'a grant is one of client_credentials, password, authorization_code, refresh_token, urn:ietf:params:oauth:grant-type:token-exchange';
const REDIRECT_RULE = 'a redirect URI must be https, http on localhost/127.0.0.1/[::1], or a private-use scheme such as com.example.app:/cb, without a fragment';
const POST_LOGOUT_RULE = 'a post-logout redirect URI must be https, http on localhost/127.0.0.1/[::1], or a private-use scheme such as com.example.app:/cb, without a fragment';
const SCOPE_RULE = 'a scope is one or more printable ASCII characters without spaces, " or \\';
const PASSWORD = 'correct horse battery';

const clientArgs = ['clients', 'create', '--name', 'billing', '--grant', 'client_credentials', '--scope', 'orders:read orders:write', '--role', 'admin', '--resource', 'http://localhost:4001'];

describe.each(backends)('sigil CLI ($name)', (backend) => {
  let database: TestDatabase;
  let env: Record<string, string>;

  beforeAll(async () => {
    database = await backend.create();
    env = testEnv(database);
  });

  afterAll(async () => {
    await database?.drop();
  });

  it('when run on a new database, migrate applies every migration once', async () => {
    const first = await sigilJson<{ applied: string[] }>(['migrate'], env);
    expect(first.applied.length).toBeGreaterThan(0);
    expect(await sigilJson(['migrate'], env)).toEqual({ applied: [] });
  });

  it('when a client is created with --json, prints exactly its id and its secret once', async () => {
    const created = await sigilJson(clientArgs, env);
    expect(Object.keys(created).sort()).toEqual(['client_id', 'client_secret']);
    expect(created['client_id']).toMatch(/^[0-9a-f]{32}$/u);
    expect(created['client_secret']).toMatch(/^[A-Za-z0-9_-]{43}$/u);

    const { clients } = await sigilJson<ClientList>(['clients', 'list'], env);
    const listed = clients.find((client) => client.client_id === created['client_id']);
    expect(listed).toMatchObject({
      name: 'billing',
      grants: ['client_credentials'],
      scope: 'orders:read orders:write',
      roles: ['admin'],
      resources: ['http://localhost:4001'],
    });
    expect(JSON.stringify(clients)).not.toContain(String(created['client_secret']));
  });

  it('when a name carries control characters (an ESC sequence, C1, a bidi override), list prints them escaped, never raw; --json keeps the value', async () => {
    const name = 'evil\u001b[2J\u001b]0;owned\u0007\u009b31m\u202ename';
    await sigilJson(['clients', 'create', '--name', name, '--grant', 'client_credentials', '--resource', 'http://localhost:4001'], env);
    const human = await sigil(['clients', 'list'], env);
    expect(human.code).toBe(0);
    for (const raw of ['\u001b', '\u0007', '\u009b', '\u202e']) expect(human.stdout).not.toContain(raw);
    expect(human.stdout).toContain('evil\\u001b[2J\\u001b]0;owned\\u0007\\u009b31m\\u202ename');
    const json = await sigil(['clients', 'list', '--json'], env);
    for (const raw of ['\u001b', '\u0007', '\u009b', '\u202e']) expect(json.stdout).not.toContain(raw);
    expect((JSON.parse(json.stdout) as ClientList).clients.map((client) => client.name)).toContain(name);
  });

  it('when a client is created with no --grant, or with a grant and no --resource, or with --access-token-ttl, list shows it as registered', async () => {
    const service = await sigilJson(['clients', 'create', '--name', 'orders-api', '--resource', 'http://localhost:4001', '--scope', 'orders:read orders:write'], env);
    expect(Object.keys(service).sort()).toEqual(['client_id', 'client_secret']);
    const lost = await sigilJson(['clients', 'create', '--name', 'lost', '--grant', 'client_credentials'], env);
    const brief = await sigilJson(['clients', 'create', '--name', 'brief', '--grant', 'client_credentials', '--resource', 'http://localhost:4001', '--access-token-ttl', '300'], env);
    const { clients } = await sigilJson<{ clients: Record<string, unknown>[] }>(['clients', 'list'], env);
    const byId = new Map(clients.map((client) => [client['client_id'], client]));
    expect(byId.get(service['client_id'])).toMatchObject({ grants: [], resources: ['http://localhost:4001'], scope: 'orders:read orders:write', access_token_ttl: null });
    expect(byId.get(lost['client_id'])).toMatchObject({ grants: ['client_credentials'], resources: [] });
    expect(byId.get(brief['client_id'])).toMatchObject({ access_token_ttl: 300 });
    const table = await sigil(['clients', 'list'], env);
    expect(table.stdout.split('\n')[0]).toMatch(/ access_token_ttl$/u);
    expect(table.stdout).toMatch(new RegExp(`^${String(brief['client_id'])} .* 300$`, 'mu'));
  });

  it('when a public client is created, no secret is printed', async () => {
    const created = await sigilJson(
      ['clients', 'create', '--name', 'spa', '--grant', 'authorization_code', '--grant', 'refresh_token', '--redirect-uri', 'http://127.0.0.1:5173/callback', '--public'],
      env,
    );
    expect(Object.keys(created)).toEqual(['client_id']);
  });

  it('without --json, prints a readable summary that says the secret is shown once', async () => {
    const result = await sigil(clientArgs, env);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^client_id: +[0-9a-f]{32}\nclient_secret: +[A-Za-z0-9_-]{43}\n\nThe secret is shown only now/u);
  });

  const badArguments: [string[], string | ReturnType<typeof expect.stringMatching>, string?][] = [
    // a flag's value at fault is named by the flag, and for a repeated flag (or a list in one) by the value too
    [['clients', 'create', '--name', 'x', '--grant', 'authorization_code', '--redirect-uri', 'foo'], `sigil: --redirect-uri "foo": ${REDIRECT_RULE}`],
    [['clients', 'create', '--name', 'x', '--grant', 'authorization_code', '--redirect-uri', 'https://app.example.com/cb', '--redirect-uri', 'foo'], `sigil: --redirect-uri "foo": ${REDIRECT_RULE}`],
    [['clients', 'create', '--name', 'x', '--grant', 'client_credentials', '--grant', 'implicit', '--resource', 'https://api'], `sigil: --grant "implicit": ${GRANT_RULE}`],
    // RP-initiated logout's return URIs follow the redirect URIs' rules
    [['clients', 'create', '--name', 'x', '--grant', 'authorization_code', '--redirect-uri', 'https://app.example.com/cb', '--post-logout-redirect-uri', 'foo'], `sigil: --post-logout-redirect-uri "foo": ${POST_LOGOUT_RULE}`],
    [
      ['clients', 'create', '--name', 'x', '--grant', 'authorization_code', '--redirect-uri', 'https://app.example.com/cb', '--post-logout-redirect-uri', 'https://app.example.com/bye', '--post-logout-redirect-uri', 'http://app.example.com/bye'],
      `sigil: --post-logout-redirect-uri "http://app.example.com/bye": ${POST_LOGOUT_RULE}`,
    ],
    [['clients', 'create', '--name', 'x', '--grant', 'authorization_code', '--redirect-uri', 'https://app.example.com/cb', '--post-logout-redirect-uri', 'https://app.example.com/bye#top'], `sigil: --post-logout-redirect-uri "https://app.example.com/bye#top": ${POST_LOGOUT_RULE}`],
    [['clients', 'create', '--name', 'x', '--grant', 'client_credentials', '--post-logout-redirect-uri', 'https://app.example.com/bye'], 'sigil: --post-logout-redirect-uri is only meaningful with the authorization_code grant'],
    [['clients', 'update', '0'.repeat(32), '--post-logout-redirect-uri', 'foo'], `sigil: --post-logout-redirect-uri "foo": ${POST_LOGOUT_RULE}`],
    [['clients', 'create', '--name', 'x', '--grant', 'client_credentials', '--resource', 'https://api', '--scope', 'orders:read caf\u00e9'], `sigil: --scope "caf\u00e9": ${SCOPE_RULE}`],
    [['clients', 'create', '--name', 'x', '--grant', 'implicit', '--resource', 'https://api', '--scope', 'a\\b'], `sigil: --grant "implicit": ${GRANT_RULE}; --scope "a\\\\b": ${SCOPE_RULE}`],
    [['clients', 'update', 'nope', '--name', 'y'], 'sigil: <client_id>: a client id is 32 hexadecimal characters'],
    [['clients', 'rotate-secret', '0'.repeat(32), '--grace', 'soon'], 'sigil: --grace is a whole number of seconds from 0 to 2592000'],
    [['users', 'create', '--username', 'bad name', '--password-stdin'], 'sigil: --username: a username is 1–100 letters, digits, ".", "_", "@", "+" or "-", starting with a letter or digit', PASSWORD],
    [['users', 'create', '--username', 'carol', '--password-stdin', '--email', 'not-an-address'], 'sigil: --email: an email must be a valid address', PASSWORD],
    [['users', 'create', '--username', 'carol', '--password-stdin', '--role', 'ops', '--role', 'has space'], expect.stringMatching(/^sigil: --role "has space": a role is /u), PASSWORD],
    [['users', 'create', '--username', 'carol', '--password-stdin'], 'sigil: --password-stdin: a password must be at least 8 characters', 'short'],
    [['users', 'set-roles', 'carol', 'ops', 'has space'], expect.stringMatching(/^sigil: \[roles\.\.\.\] "has space": a role is /u)],
    [['api-keys', 'create', '--name', 'k', '--resource', 'https://api', '--resource', 'https://api#fragment'], 'sigil: --resource "https://api#fragment": a resource must be an absolute URI without a fragment'],
    [['api-keys', 'create', '--name', 'k', '--resource', 'https://api', '--scope', 'orders:read sigil:admin'], 'sigil: --scope: scopes beginning with "sigil:" are the issuer\'s own (the admin API takes tokens, not API keys)'],
    [['audit', 'list', '--limit', '0'], 'sigil: --limit: a limit is a whole number from 1 to 1000'],
    [['clients', 'create', '--grant', 'client_credentials'], "sigil: required option '--name <name>' not specified"],
    [['clients', 'create', '--name', 'x', '--grant', 'implicit', '--resource', 'https://api'], `sigil: --grant "implicit": ${GRANT_RULE}`],
    [['clients', 'create', '--name', 'x', '--resource', 'https://api', '--public'], "sigil: a client with no --grant (a resource service's own client) must be confidential: it authenticates with its secret"],
    [['clients', 'create', '--name', 'x', '--grant', 'client_credentials', '--access-token-ttl', '59'], 'sigil: --access-token-ttl is at least 60 seconds'],
    [['clients', 'create', '--name', 'x', '--grant', 'client_credentials', '--access-token-ttl', '86401'], 'sigil: --access-token-ttl is at most 86400 seconds (one day)'],
    [['clients', 'create', '--name', 'x', '--grant', 'client_credentials', '--access-token-ttl', '2m'], 'sigil: --access-token-ttl is a whole number of seconds from 60 to 86400'],
    [['clients', 'create', '--name', 'x', '--grant', 'client_credentials', '--resource', 'https://api', '--public'], 'sigil: a public client cannot use the client_credentials or password grant (it cannot authenticate)'],
    [['clients', 'create', '--name', 'x', '--grant', 'authorization_code', '--redirect-uri', 'http://app.example.com/cb'], `sigil: --redirect-uri "http://app.example.com/cb": ${REDIRECT_RULE}`],
    [['clients', 'create', '--name', 'x', '--grant', 'client_credentials', '--resource', 'not a uri'], 'sigil: --resource "not a uri": a resource must be an absolute URI without a fragment'],
    [['clients', 'create', '--name', 'x', '--grant', 'client_credentials', '--resource', 'https://api', '--scope', 'a "b'], `sigil: --scope "\\"b": ${SCOPE_RULE}`],
    [['clients', 'create', '--name', 'x', '--grant', 'client_credentials', '--resource', 'https://api', '--role', 'has space'], expect.stringMatching(/^sigil: --role "has space": a role is/u)],
    [['clients', 'create', '--name', 'x', '--bogus'], "sigil: unknown option '--bogus'"],
    [['clients', 'delete'], "sigil: missing required argument 'client_id'"],
    [['clients', 'purge'], "sigil: unknown command 'purge'"],
    [['frobnicate'], "sigil: unknown command 'frobnicate'"],
    [['api-keys', 'create', '--name', 'k', '--resource', 'https://api', '--expires-in', 'soon'], 'sigil: --expires-in must be a number of seconds'],
    [['api-keys', 'create', '--name', 'k', '--resource', 'https://api', '--expires-in', '10'], 'sigil: --expires-in must be at least 60 seconds'],
    [['api-keys', 'create', '--scope', 'a'], "sigil: required option '--name <name>' not specified"],
    [['api-keys', 'create', '--name', 'k', '--scope', 'orders:read'], `sigil: ${NEEDS_RESOURCE}`],
    [['api-keys', 'create', '--name', 'k', '--resource', 'not a uri'], 'sigil: --resource "not a uri": a resource must be an absolute URI without a fragment'],
    [['api-keys', 'update', '0'.repeat(32)], `sigil: ${NEEDS_RESOURCE}`],
    [['api-keys', 'update', 'nope', '--resource', 'https://api'], 'sigil: <id>: an API key id is 32 hexadecimal characters'],
    [['api-keys', 'update', '0'.repeat(32), '--resource', 'https://api'], `sigil: no API key with id ${'0'.repeat(32)}`],
    [['api-keys', 'revoke', 'nope'], 'sigil: <id>: an API key id is 32 hexadecimal characters'],
    [['api-keys', 'rotate', 'nope'], 'sigil: <id>: an API key id is 32 hexadecimal characters'],
    [['api-keys', 'revoke', '0'.repeat(32)], `sigil: no API key with id ${'0'.repeat(32)}`],
    [['keys', 'retire', 'no-such-kid'], 'sigil: a kid is 43 base64url characters (see sigil keys list)'],
    [['keys', 'retire', 'A'.repeat(43)], expect.stringMatching(new RegExp(`^sigil: no key with kid ${'A'.repeat(43)} in KEYS_DIR `, 'u'))],
    [['keys', 'import', '--from-dir', '/tmp'], 'sigil: "sigil keys import" works on the database key store: set KEY_STORE=database (and KEYS_ENCRYPTION_KEY)'],
  ];

  it('when given bad arguments, exits 2 with one line on stderr each time and writes nothing', async () => {
    // every command that writes records an admin event in the same transaction: the trail shows any write
    const snapshot = async () => ({ clients: await sigilJson<ClientList>(['clients', 'list'], env), audit: await sigilJson(['audit', 'list'], env) });
    const before = await snapshot();
    for (const [args, message, stdin] of badArguments) {
      const result = await sigil(args, env, stdin);
      expect({ args, code: result.code, stdout: result.stdout, stderr: result.stderr.trimEnd().split('\n') }).toEqual({
        args,
        code: 2,
        stdout: '',
        stderr: [message],
      });
    }
    expect(await snapshot()).toEqual(before);
    // one process per case, on a shared machine
  }, 240_000);

  it('--version and -V print the issuer package\'s version and exit 0', async () => {
    const { version } = JSON.parse(await fs.readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      expect(await sigil([flag], {})).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
    }
  });

  it('clients list shows each client\'s redirect URIs', async () => {
    const created = await sigilJson<{ client_id: string }>(
      ['clients', 'create', '--name', 'web', '--grant', 'authorization_code', '--redirect-uri', 'https://app.example.com/callback', '--redirect-uri', 'http://127.0.0.1:5173/cb', '--public'],
      env,
    );
    const table = await sigil(['clients', 'list'], env);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/ roles +redirect_uris +resources /u);
    expect(table.stdout.split('\n').find((line) => line.startsWith(created.client_id))).toMatch(/ https:\/\/app\.example\.com\/callback,http:\/\/127\.0\.0\.1:5173\/cb /u);
  });

  it('clients create and update take --post-logout-redirect-uri (repeatable); show and --json print them; --no-post-logout-redirect-uri empties them', async () => {
    const created = await sigilJson<{ client_id: string }>(
      ['clients', 'create', '--name', 'web', '--grant', 'authorization_code', '--redirect-uri', 'https://app.example.com/callback', '--post-logout-redirect-uri', 'https://app.example.com/bye', '--post-logout-redirect-uri', 'http://127.0.0.1:5173/'],
      env,
    );
    expect(await sigilJson(['clients', 'show', created.client_id], env)).toMatchObject({ post_logout_redirect_uris: ['https://app.example.com/bye', 'http://127.0.0.1:5173/'] });
    const shown = await sigil(['clients', 'show', created.client_id], env);
    expect(shown.stdout).toContain('\npost_logout_uris: https://app.example.com/bye http://127.0.0.1:5173/\n');
    expect(await sigilJson(['clients', 'update', created.client_id, '--post-logout-redirect-uri', 'com.example.app:/bye'], env)).toMatchObject({ post_logout_redirect_uris: ['com.example.app:/bye'] });
    expect(await sigilJson(['clients', 'update', created.client_id, '--no-post-logout-redirect-uri'], env)).toMatchObject({ post_logout_redirect_uris: [] });
    expect((await sigil(['clients', 'show', created.client_id], env)).stdout).toContain('\npost_logout_uris: (none)\n');
  });

  it('when the environment is bad, exits 2 naming the variable', async () => {
    const result = await sigil(['clients', 'list'], { ...env, ACCESS_TOKEN_TTL: 'soon' });
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('sigil: invalid configuration: ACCESS_TOKEN_TTL must be a whole number (got "soon")\n');
  });

  it('keys generate creates the first key as current, then a next key; list shows both', async () => {
    const keysEnv = { ...env, KEYS_DIR: `${database.keysDir}-cli` };
    expect(await sigilJson(['keys', 'list'], keysEnv)).toEqual({ keys: [] });
    const first = await sigilJson(['keys', 'generate'], keysEnv);
    expect(first).toMatchObject({ state: 'current', alg: 'RS256', kid: expect.any(String) });
    const second = await sigilJson(['keys', 'generate'], keysEnv);
    expect(second).toMatchObject({ state: 'next', alg: 'RS256' });
    const listed = await sigilJson<{ keys: { kid: string; state: string }[] }>(['keys', 'list'], keysEnv);
    expect(listed.keys.map(({ kid, state }) => ({ kid, state })).sort((a, b) => a.state.localeCompare(b.state))).toEqual([
      { kid: first['kid'], state: 'current' },
      { kid: second['kid'], state: 'next' },
    ]);
    const third = await sigil(['keys', 'generate', '--json'], keysEnv);
    expect(third.code).toBe(1);
    expect(third.stderr).toBe(`sigil: a next key already exists (${String(second['kid'])}); rotate before generating another\n`);
  });
});

describe.each(backends)('sigil CLI beside a running issuer ($name)', (backend) => {
  const suite = issuerSuite(backend);

  it('api-keys: create prints the key once; list never shows it; revoke stamps revoked_at', async () => {
    const created = await sigilJson<{ id: string; key: string }>(
      ['api-keys', 'create', '--name', 'ci-bot', '--owner', 'platform', '--resource', 'http://localhost:4001', '--resource', 'http://localhost:4002', '--scope', 'orders:read', '--role', 'reader', '--expires-in', '3600'],
      testEnv(suite.database),
    );
    expect(Object.keys(created).sort()).toEqual(['id', 'key']);
    expect(created.key).toMatch(new RegExp(`^sgk_${created.id}_[A-Za-z0-9_-]{43}$`, 'u'));
    const listed = await sigilJson<{ api_keys: Record<string, unknown>[] }>(['api-keys', 'list'], testEnv(suite.database));
    expect(JSON.stringify(listed)).not.toContain(created.key.slice(-43));
    expect(listed.api_keys.find((key) => key['id'] === created.id)).toMatchObject({
      name: 'ci-bot',
      owner: 'platform',
      scope: 'orders:read',
      roles: ['reader'],
      resources: ['http://localhost:4001', 'http://localhost:4002'],
      needs_resources: false,
      expires_at: expect.any(String),
      revoked_at: null,
    });
    const rotated = await sigilJson<{ id: string; key: string }>(['api-keys', 'rotate', created.id], testEnv(suite.database));
    expect(Object.keys(rotated).sort()).toEqual(['id', 'key']);
    expect(rotated.id).toBe(created.id);
    expect(rotated.key).toMatch(new RegExp(`^sgk_${created.id}_[A-Za-z0-9_-]{43}$`, 'u'));
    expect(rotated.key).not.toBe(created.key);
    const revoked = await sigilJson<{ revoked_at: string | null }>(['api-keys', 'revoke', created.id], testEnv(suite.database));
    expect(revoked.revoked_at).toEqual(expect.any(String));
    const refused = await sigil(['api-keys', 'rotate', created.id], testEnv(suite.database));
    expect({ code: refused.code, stderr: refused.stderr }).toEqual({ code: 2, stderr: `sigil: API key ${created.id} is revoked: create a new one (api-keys create)\n` });
  });

  it('api-keys: list marks a key without resources (from before the migration); update gives it resources, replacing any', async () => {
    const env = testEnv(suite.database);
    const created = await sigilJson<{ id: string }>(['api-keys', 'create', '--name', 'legacy', '--resource', 'http://localhost:4001'], env);
    // what migration 20261201002000 leaves on a key made before it
    await suite.issuer.db('api_keys').where({ id: created.id }).update({ resources: JSON.stringify([]) });
    const listed = await sigilJson<{ api_keys: Record<string, unknown>[] }>(['api-keys', 'list'], env);
    expect(listed.api_keys.find((key) => key['id'] === created.id)).toMatchObject({ resources: [], needs_resources: true });
    const human = await sigil(['api-keys', 'list'], env);
    expect(human.stdout.split('\n').find((line) => line.startsWith(created.id))).toContain('NONE (refused; api-keys update <id> --resource URI)');

    const updated = await sigilJson(['api-keys', 'update', created.id, '--resource', 'http://localhost:4002', '--resource', 'http://localhost:4002'], env);
    expect(updated).toMatchObject({ id: created.id, resources: ['http://localhost:4002'], needs_resources: false });
    const relisted = await sigilJson<{ api_keys: Record<string, unknown>[] }>(['api-keys', 'list'], env);
    expect(relisted.api_keys.find((key) => key['id'] === created.id)).toMatchObject({ resources: ['http://localhost:4002'], needs_resources: false });
    const readable = await sigil(['api-keys', 'update', created.id, '--resource', 'http://localhost:4001'], env);
    expect(readable).toMatchObject({ code: 0, stdout: `${created.id} is accepted by http://localhost:4001\n` });
  });

  it('users: create reads the password from stdin, names are unique case-insensitively, roles can be replaced', async () => {
    const created = await sigil(['users', 'create', '--username', 'Alice', '--password-stdin', '--role', 'admin', '--email', 'alice@example.com', '--json'], testEnv(suite.database), 'correct horse battery\n');
    expect(created.code).toBe(0);
    const user = JSON.parse(created.stdout) as { id: string; username: string };
    expect(user).toEqual({ id: expect.stringMatching(/^[0-9a-f-]{36}$/u), username: 'Alice' });

    const refusals = [
      [['users', 'create', '--username', 'alice', '--password-stdin'], 'correct horse battery', 'sigil: the username alice is taken'],
      [['users', 'create', '--username', 'bob'], 'correct horse battery', 'sigil: the password is read from standard input: pass --password-stdin'],
      [['users', 'create', '--username', 'bob', '--password-stdin'], 'short', 'sigil: --password-stdin: a password must be at least 8 characters'],
      [['users', 'create', '--username', 'bad name', '--password-stdin'], 'correct horse battery', expect.stringMatching(/^sigil: --username: a username is/u)],
      [['users', 'set-roles', 'nobody', 'admin'], '', 'sigil: no user named nobody'],
      [['users', 'disable', 'nobody'], '', 'sigil: no user named nobody'],
    ] as const;
    for (const [args, stdin, message] of refusals) {
      const result = await sigil([...args], testEnv(suite.database), stdin);
      expect({ args, code: result.code, stderr: result.stderr.trimEnd() }).toEqual({ args, code: 2, stderr: message });
    }

    expect(await sigilJson(['users', 'set-roles', 'ALICE', 'ops', 'admin'], testEnv(suite.database))).toMatchObject({ username: 'Alice', roles: ['admin', 'ops'] });
    expect(await sigilJson(['users', 'disable', 'alice'], testEnv(suite.database))).toMatchObject({ disabled: true });
    const { users } = await sigilJson<{ users: Record<string, unknown>[] }>(['users', 'list'], testEnv(suite.database));
    expect(users).toEqual([{ id: user.id, username: 'Alice', email: 'alice@example.com', roles: ['admin', 'ops'], disabled: true, created_at: expect.any(String) }]);
  });

  it('when the issuer is running, a client created with the CLI can get a token at once', async () => {
    const created = await sigilJson<{ client_id: string; client_secret: string }>(clientArgs, testEnv(suite.database));
    const response = await fetch(`${suite.issuer.url}/token`, {
      method: 'POST',
      headers: { authorization: basicAuth(String(created.client_id), String(created.client_secret)) },
      body: new URLSearchParams({ grant_type: 'client_credentials' }),
    });
    expect(response.status).toBe(200);
    const { clients } = await sigilJson<ClientList>(['clients', 'list'], testEnv(suite.database));
    expect(clients.map((client) => client.client_id)).toContain(created.client_id);
  });
});
