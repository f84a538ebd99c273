import { beforeAll, describe, expect, it } from '@jest/globals';

import { backends, describeOnPostgres } from '../support/backends.js';
import { sigil, sigilJson, type CliResult } from '../support/cli.js';
import { basicAuth, request } from '../support/http.js';
import { freePort, issuerSuite, testEnv } from '../support/issuer.js';
import { postForm, type Credentials } from '../support/oauth.js';
import { spawnIssuer } from '../support/process.js';

const ORDERS = 'http://localhost:4001';
const REPORTS = 'http://localhost:4002';
const PASSWORD = 'correct horse battery';

/** A client as `clients show --json` prints it. */
interface ClientView {
  client_id: string;
  name: string;
  grants: string[];
  scope: string;
  roles: string[];
  redirect_uris: string[];
  resources: string[];
  public: boolean;
  first_party: boolean;
  access_token_ttl: number | null;
  require_dpop: boolean;
  disabled: boolean;
  disabled_at: string | null;
  secret_rotated_at: string | null;
  previous_secret_expires_at: string | null;
  created_at: string;
}

interface Tokens {
  access_token: string;
  refresh_token: string;
}

interface Created {
  client_id: string;
  client_secret: string;
}

/** A bad-argument answer: exit 2, one line on stderr, nothing on stdout. */
function expectRefused(result: CliResult, message: string | RegExp): void {
  expect(result.code).toBe(2);
  expect(result.stdout).toBe('');
  expect(result.stderr.split('\n')).toHaveLength(2);
  expect(result.stderr).toMatch(message);
}

describe.each(backends)('client lifecycle commands ($name)', (backend) => {
  const suite = issuerSuite(backend);
  let env: Record<string, string>;
  let service: Credentials;

  beforeAll(async () => {
    env = testEnv(suite.database);
    // a resource service's own client, to introspect with
    const created = await sigilJson<Created>(['clients', 'create', '--name', 'orders-api', '--resource', ORDERS, '--scope', 'orders:read orders:write'], env);
    service = { id: created.client_id, secret: created.client_secret };
    await sigilJson(['clients', 'create', '--name', 'reports-api', '--resource', REPORTS, '--scope', 'reports:read'], env);
    const user = await sigil(['users', 'create', '--username', 'pat', '--password-stdin'], env, PASSWORD);
    expect(user.code).toBe(0);
  });

  const create = async (args: string[]): Promise<Credentials> => {
    const created = await sigilJson<Created>(['clients', 'create', ...args], env);
    return { id: created.client_id, secret: created.client_secret ?? '' };
  };
  const show = (id: string) => sigilJson<ClientView>(['clients', 'show', id], env);
  const machineToken = (client: Credentials, form: Record<string, string> = {}) => postForm(suite.issuer.url, { grant_type: 'client_credentials', ...form }, client);
  const signIn = async (client: Credentials): Promise<Tokens> => {
    const response = await postForm(suite.issuer.url, { grant_type: 'password', username: 'pat', password: PASSWORD }, client);
    expect(response.status).toBe(200);
    return (await response.json()) as Tokens;
  };
  const refresh = (client: Credentials, tokens: Tokens) => postForm(suite.issuer.url, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token }, client);
  const introspect = async (token: string, by: Credentials = service) =>
    (await (await postForm(suite.issuer.url, { token }, by, { path: '/token/introspection' })).json()) as { active: boolean };
  /** The `clients` table, every column (secret digests included), to compare before and after. */
  const clientRows = () => suite.issuer.db('clients').select('*').orderBy('id');
  const errorOf = async (response: Response) => ((await response.json()) as { error: string }).error;

  it('when a client is shown, prints what list prints for it plus its lifecycle, never a secret or a digest; list shows disabled', async () => {
    const client = await create(['--name', 'shown', '--grant', 'client_credentials', '--scope', 'orders:read', '--role', 'ops', '--resource', ORDERS]);
    const shown = await show(client.id);
    expect(shown).toMatchObject({
      client_id: client.id,
      name: 'shown',
      grants: ['client_credentials'],
      scope: 'orders:read',
      roles: ['ops'],
      resources: [ORDERS],
      public: false,
      disabled: false,
      disabled_at: null,
      secret_rotated_at: null,
      previous_secret_expires_at: null,
    });
    const { clients } = await sigilJson<{ clients: ClientView[] }>(['clients', 'list'], env);
    expect(clients.find((listed) => listed.client_id === client.id)).toEqual(shown);
    const [row] = await suite.issuer.db('clients').where({ id: client.id }).select<{ secret_hash: string }[]>('secret_hash');
    expect(row?.secret_hash).toMatch(/^[0-9a-f]{64}$/u);
    for (const output of [JSON.stringify(shown), JSON.stringify(clients), (await sigil(['clients', 'show', client.id], env)).stdout]) {
      expect(output).not.toContain(client.secret);
      expect(output).not.toContain(String(row?.secret_hash));
    }
    const table = await sigil(['clients', 'list'], env);
    expect(table.stdout.split('\n')[0]).toMatch(/ disabled +access_token_ttl$/u);
  });

  it('when each setting is updated, show reflects it and the token endpoint applies it at once', async () => {
    const client = await create(['--name', 'changing', '--grant', 'client_credentials', '--scope', 'orders:read', '--resource', ORDERS]);
    expect((await machineToken(client, { scope: 'orders:read' })).status).toBe(200);

    expect(await sigilJson(['clients', 'update', client.id, '--scope', 'reports:read', '--resource', REPORTS], env)).toMatchObject({ scope: 'reports:read', resources: [REPORTS] });
    // the engine's cached copy went with the change: the old resource is refused at once, the new one served
    expect(await errorOf(await machineToken(client, { resource: ORDERS }))).toBe('invalid_target');
    expect((await machineToken(client, { resource: REPORTS, scope: 'reports:read' })).status).toBe(200);

    const changes: [string[], Partial<ClientView>][] = [
      [['--name', 'renamed'], { name: 'renamed' }],
      [['--role', 'ops', '--role', 'audit'], { roles: ['ops', 'audit'] }],
      [['--no-role'], { roles: [] }],
      [['--access-token-ttl', '300'], { access_token_ttl: 300 }],
      [['--access-token-ttl', 'default'], { access_token_ttl: null }],
      [['--resource', ORDERS, '--resource', REPORTS], { resources: [ORDERS, REPORTS] }],
      [['--scope', ''], { scope: '' }],
      [['--grant', 'authorization_code', '--grant', 'refresh_token', '--redirect-uri', 'https://app.example.com/cb'], { grants: ['authorization_code', 'refresh_token'], redirect_uris: ['https://app.example.com/cb'] }],
      [['--first-party'], { first_party: true }],
      [['--no-first-party'], { first_party: false }],
      [['--require-dpop'], { require_dpop: true }],
      [['--no-require-dpop'], { require_dpop: false }],
      [['--grant', 'client_credentials', '--no-redirect-uri'], { grants: ['client_credentials'], redirect_uris: [] }],
      [['--no-grant', '--no-resource'], { grants: [], resources: [] }],
    ];
    for (const [args, expected] of changes) {
      const updated = await sigilJson<ClientView>(['clients', 'update', client.id, ...args], env);
      expect(updated).toMatchObject(expected);
      expect(await show(client.id)).toEqual(updated);
    }
    // no grant any more: the engine knows at once
    expect(await errorOf(await machineToken(client))).toBe('unauthorized_client');
  });

  it('when an update or another command has a bad argument, exits 2 with one line and writes nothing', async () => {
    const client = await create(['--name', 'steady', '--grant', 'client_credentials', '--resource', ORDERS]);
    const spa = await create(['--name', 'spa', '--public', '--grant', 'authorization_code', '--redirect-uri', 'https://spa.example.com/cb', '--resource', ORDERS]);
    const before = await clientRows();
    const refusals: [string[], string | RegExp][] = [
      [['update', client.id, '--grant', 'authorization_code'], 'the authorization_code grant needs at least one --redirect-uri'],
      [['update', client.id, '--redirect-uri', 'https://app.example.com/cb'], '--redirect-uri is only meaningful with the authorization_code grant'],
      [['update', client.id, '--grant', 'authorization_code', '--redirect-uri', 'http://evil.example.com/cb'], /a redirect URI must be https/u],
      [['update', client.id, '--access-token-ttl', '5'], '--access-token-ttl is at least 60 seconds'],
      [['update', client.id, '--access-token-ttl', 'soon'], '--access-token-ttl is a whole number of seconds'],
      [['update', client.id, '--grant', 'implicit'], /a grant is one of/u],
      [['update', client.id, '--name', ' '], 'a name is required'],
      [['update', client.id, '--no-grant', '--access-token-ttl', '300'], '--access-token-ttl is only meaningful for a client with a grant'],
      [['update', client.id, '--no-grant', '--require-dpop'], '--require-dpop is only meaningful for a client with a grant'],
      [['update', client.id, '--public'], 'a confidential client cannot be made public'],
      [['update', client.id], 'nothing to change'],
      [['update', spa.id, '--grant', 'client_credentials', '--no-redirect-uri'], 'a public client cannot use the client_credentials or password grant'],
      [['update', '0123456789abcdef0123456789abcdef', '--name', 'x'], 'no client with id 0123456789abcdef0123456789abcdef'],
      [['update', 'not-an-id', '--name', 'x'], 'a client id is 32 hexadecimal characters'],
      [['show', '0123456789abcdef0123456789abcdef'], 'no client with id 0123456789abcdef0123456789abcdef'],
      [['disable', 'x\ny'], 'a client id is 32 hexadecimal characters'],
      [['enable', '0123456789abcdef0123456789abcdef'], 'no client with id'],
      [['delete', '0123456789abcdef0123456789abcdef'], 'no client with id'],
      [['rotate-secret', spa.id], `client ${spa.id} is public: it has no secret to rotate`],
      [['rotate-secret', client.id, '--grace', '-1'], /--grace/u],
      [['rotate-secret', client.id, '--grace', 'later'], '--grace is a whole number of seconds from 0 to 2592000'],
      [['rotate-secret', client.id, '--grace', '2592001'], '--grace is at most 2592000 seconds'],
      [['rotate-secret', '0123456789abcdef0123456789abcdef'], 'no client with id'],
      [['show'], /missing required argument/u],
    ];
    // with and without --json in turn: a refusal is the same one line either way
    for (const [i, [args, message]] of refusals.entries()) expectRefused(await sigil(['clients', ...args, ...(i % 2 === 0 ? [] : ['--json'])], env), message);
    expect(await clientRows()).toEqual(before);
    expect((await machineToken(client)).status).toBe(200);
  });

  it('when a client is disabled, /token refuses it at once (401 invalid_client), as do introspection and the revocation feed; enabled, it works again', async () => {
    const client = await create(['--name', 'machine', '--grant', 'client_credentials', '--scope', 'orders:read', '--resource', ORDERS]);
    const serviceClient = await create(['--name', 'reports-feed', '--resource', REPORTS]);
    const { access_token: token } = (await (await machineToken(client)).json()) as Tokens;
    expect(await introspect(token, client)).toMatchObject({ active: true });
    const readFeed = () => request(`${suite.issuer.url}/token/revocations`, { headers: { authorization: basicAuth(serviceClient.id, serviceClient.secret) } });
    expect((await readFeed()).status).toBe(200);

    const disabled = await sigilJson<ClientView>(['clients', 'disable', client.id], env);
    expect(disabled).toMatchObject({ client_id: client.id, disabled: true });
    expect(disabled.disabled_at).not.toBeNull();
    await sigilJson(['clients', 'disable', serviceClient.id], env);
    for (let i = 0; i < 5; i += 1) {
      const refused = await machineToken(client);
      expect(refused.status).toBe(401);
      expect(await errorOf(refused)).toBe('invalid_client');
    }
    const introspection = await postForm(suite.issuer.url, { token }, client, { path: '/token/introspection' });
    expect(introspection.status).toBe(401);
    expect((await readFeed()).status).toBe(401);

    expect(await sigilJson(['clients', 'enable', client.id], env)).toMatchObject({ disabled: false, disabled_at: null });
    expect((await machineToken(client)).status).toBe(200);
    expect((await sigil(['clients', 'disable', client.id], env)).stdout).toBe(`${client.id}: disabled; its grants and access tokens are revoked\n`);
  });

  it('when a client is disabled and enabled again, its refresh tokens never work again and its access tokens introspect inactive; other clients keep theirs', async () => {
    const app = await create(['--name', 'app', '--grant', 'password', '--grant', 'refresh_token', '--scope', 'orders:read', '--resource', ORDERS]);
    const other = await create(['--name', 'other-app', '--grant', 'password', '--grant', 'refresh_token', '--scope', 'orders:read', '--resource', ORDERS]);
    const first = await signIn(app);
    const rotated = (await (await refresh(app, first)).json()) as Tokens;
    const others = await signIn(other);
    expect(await introspect(rotated.access_token)).toMatchObject({ active: true });

    await sigilJson(['clients', 'disable', app.id], env);
    expect(Number((await suite.issuer.db('oidc_payloads').whereRaw("payload->>'clientId' = ?", [app.id]).count('* as count'))[0]?.['count'])).toBe(0);
    await sigilJson(['clients', 'enable', app.id], env);

    const refused = await refresh(app, rotated);
    expect(refused.status).toBe(400);
    expect(await errorOf(refused)).toBe('invalid_grant');
    expect(await introspect(rotated.access_token)).toEqual({ active: false });
    expect((await refresh(other, others)).status).toBe(200);
    // enabled again: a new sign-in works, and so does its refresh token
    expect((await refresh(app, await signIn(app))).status).toBe(200);
  });

  it('when a client is deleted, it is refused at once, its grants are revoked and it is gone from show and list', async () => {
    const app = await create(['--name', 'doomed', '--grant', 'password', '--grant', 'refresh_token', '--scope', 'orders:read', '--resource', ORDERS]);
    const tokens = await signIn(app);

    const deleted = await sigilJson<ClientView & { deleted: boolean }>(['clients', 'delete', app.id], env);
    expect(deleted).toMatchObject({ deleted: true, client_id: app.id, name: 'doomed' });
    const refused = await refresh(app, tokens);
    expect(refused.status).toBe(401);
    expect(await errorOf(refused)).toBe('invalid_client');
    expect(await introspect(tokens.access_token)).toEqual({ active: false });
    expect(Number((await suite.issuer.db('oidc_payloads').whereRaw("payload->>'clientId' = ?", [app.id]).count('* as count'))[0]?.['count'])).toBe(0);
    expectRefused(await sigil(['clients', 'show', app.id], env), `no client with id ${app.id}`);
    const { clients } = await sigilJson<{ clients: ClientView[] }>(['clients', 'list'], env);
    expect(clients.map((client) => client.client_id)).not.toContain(app.id);
  });

  it('when a secret is rotated without --grace, the old secret is refused at once and the new one works; --json prints exactly the id and the new secret', async () => {
    const client = await create(['--name', 'rotating', '--grant', 'client_credentials', '--resource', ORDERS]);
    expect((await machineToken(client)).status).toBe(200);

    const rotated = await sigilJson<Created>(['clients', 'rotate-secret', client.id], env);
    expect(Object.keys(rotated).sort()).toEqual(['client_id', 'client_secret']);
    expect(rotated.client_id).toBe(client.id);
    expect(rotated.client_secret).toMatch(/^[A-Za-z0-9_-]{43}$/u);
    expect(rotated.client_secret).not.toBe(client.secret);

    for (let i = 0; i < 3; i += 1) expect((await machineToken(client)).status).toBe(401);
    expect((await machineToken({ id: client.id, secret: rotated.client_secret })).status).toBe(200);
    expect(await show(client.id)).toMatchObject({ previous_secret_expires_at: null, secret_rotated_at: expect.any(String) });
  });

  it('when a secret is rotated with --grace, both secrets work during the grace period and the old one never after', async () => {
    const client = await create(['--name', 'graceful', '--grant', 'client_credentials', '--resource', ORDERS]);
    expect((await machineToken(client)).status).toBe(200);

    const rotated = await sigilJson<Created>(['clients', 'rotate-secret', client.id, '--grace', '3'], env);
    const fresh = { id: client.id, secret: rotated.client_secret };
    const { previous_secret_expires_at: until } = await show(client.id);
    expect(until).not.toBeNull();
    expect((await machineToken(client)).status).toBe(200);
    expect((await machineToken(fresh)).status).toBe(200);
    expect((await machineToken({ id: client.id, secret: 'not-the-secret' })).status).toBe(401);

    await new Promise((resolve) => setTimeout(resolve, Math.max(0, new Date(until ?? 0).getTime() - Date.now()) + 200));
    for (let i = 0; i < 3; i += 1) expect((await machineToken(client)).status).toBe(401);
    expect((await machineToken(fresh)).status).toBe(200);

    // a second rotation during a grace period drops the secret the first one replaced
    const second = await sigilJson<Created>(['clients', 'rotate-secret', client.id, '--grace', '600'], env);
    expect((await machineToken(fresh)).status).toBe(200);
    expect((await machineToken({ id: client.id, secret: second.client_secret })).status).toBe(200);
    expect((await machineToken(client)).status).toBe(401);
  });
});

describeOnPostgres('client lifecycle on a cluster ($name)', (backend) => {
  it('when a client is disabled while two workers serve, every worker refuses it at once', async () => {
    const database = await backend.create();
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const issuer = spawnIssuer({ ...testEnv(database), PORT: String(port), ISSUER: url, WEB_CONCURRENCY: '2', LOG_LEVEL: 'info' });
    try {
      await issuer.waitForOutput(/"msg":"sigil issuer listening"/u, 2);
      const { client_id: id, client_secret: secret } = await sigilJson<Created>(
        ['clients', 'create', '--name', 'c', '--grant', 'client_credentials', '--resource', ORDERS],
        testEnv(database),
      );
      // each request on a connection of its own: the primary hands connections to the workers in turn
      const tokenStatuses = () =>
        Promise.all(
          Array.from({ length: 8 }, () =>
            request(`${url}/token`, {
              method: 'POST',
              headers: { authorization: basicAuth(id, secret), 'content-type': 'application/x-www-form-urlencoded' },
              body: 'grant_type=client_credentials',
            }).then((response) => response.status),
          ),
        );
      // both workers have the client cached
      expect(await tokenStatuses()).toEqual(Array(8).fill(200));
      await sigilJson(['clients', 'disable', id], testEnv(database));
      expect(await tokenStatuses()).toEqual(Array(8).fill(401));
      await sigilJson(['clients', 'enable', id], testEnv(database));
      expect(await tokenStatuses()).toEqual(Array(8).fill(200));
    } finally {
      issuer.child.kill('SIGTERM');
      await issuer.exited;
      await database.drop();
    }
  });
});
