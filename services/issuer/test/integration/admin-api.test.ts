import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import { importJWK, SignJWT } from 'jose';

import { sendAdminCommand } from '../../src/admin/socket.js';
import { readKeys } from '../../src/keys/file-store.js';
import { AdminApi, adminToken, OpenApiContract, type AdminResponse } from '../support/admin-api.js';
import { backends, describeOnPostgres, ready } from '../support/backends.js';
import { sigil, sigilJson } from '../support/cli.js';
import { basicAuth, request } from '../support/http.js';
import { freePort, issuerSuite, testEnv } from '../support/issuer.js';
import { claimsOf, postForm, registerClient, type Credentials } from '../support/oauth.js';
import { spawnIssuer } from '../support/process.js';

const ORDERS = 'http://localhost:4001';
const REPORTS = 'http://localhost:4002';
const PASSWORD = 'correct horse battery';

interface ClientView {
  client_id: string;
  name: string;
  grants: string[];
  scope: string;
  resources: string[];
  access_token_ttl: number | null;
  disabled: boolean;
  previous_secret_expires_at: string | null;
}

interface ClientCreated {
  client_id: string;
  client_secret: string;
  client: ClientView;
}

interface UserView {
  id: string;
  username: string;
  roles: string[];
  disabled: boolean;
}

interface ApiKeyView {
  id: string;
  resources: string[];
  revoked_at: string | null;
}

interface AuditEvent {
  id: string;
  type: string;
  actor: string | null;
  object: string | null;
  detail: Record<string, unknown> | null;
}

interface ErrorAnswer {
  error: string;
  error_description: string;
  fields?: { in: string; field?: string; message: string }[];
}

/** A client-credentials token request's status, on a connection of its own. */
async function tokenStatus(issuer: string, client: Credentials, resource = ORDERS): Promise<number> {
  return (await postForm(issuer, { grant_type: 'client_credentials', resource }, client)).status;
}

describe.each(backends)('the admin API ($name)', (backend) => {
  const suite = issuerSuite(backend);
  let api: AdminApi | undefined;
  let contract: OpenApiContract | undefined;
  let adminClient: Credentials | undefined;
  const admin = () => ready(api);
  const env = () => testEnv(suite.database);

  beforeAll(async () => {
    const { issuer } = suite.issuer;
    // the operator's first admin client comes from the CLI (through the embedded issuer's socket on PGlite)
    const created = await sigilJson<ClientCreated>(
      ['clients', 'create', '--name', 'provisioner', '--grant', 'client_credentials', '--scope', 'sigil:admin sigil:read', '--resource', `${issuer}/admin`],
      env(),
    );
    adminClient = { id: created.client_id, secret: created.client_secret };
    contract = await OpenApiContract.load(`${suite.issuer.url}/admin/v1/openapi.json`);
    api = new AdminApi(suite.issuer.url, contract, await adminToken(issuer, adminClient, 'sigil:admin'));
  });

  afterAll(() => {
    // every answer a test of this suite received was one the OpenAPI document describes
    expect(api?.nonconforming ?? []).toEqual([]);
  });

  it('serves a valid OpenAPI 3.1 document naming every resource, the admin scopes and the error shape', () => {
    const document = ready(contract).document;
    expect(document['openapi']).toBe('3.1.0');
    expect(Object.keys(document.paths).sort()).toEqual(
      ['/api-keys', '/api-keys/{id}', '/api-keys/{id}/secret', '/audit-events', '/audit-events/{id}', '/clients', '/clients/{id}', '/clients/{id}/secret', '/keys', '/keys/rotate', '/keys/{kid}', '/users', '/users/{id}', '/users/{id}/password'].sort(),
    );
    const create = document.paths['/clients']?.['post'] as unknown as { requestBody: { content: Record<string, { schema: { properties: Record<string, unknown>; additionalProperties: boolean } }> } };
    const fields = create.requestBody.content['application/json']?.schema;
    // wire names, from the command's own schema
    expect(Object.keys(fields?.properties ?? {})).toEqual(expect.arrayContaining(['name', 'grants', 'scope', 'redirect_uris', 'post_logout_redirect_uris', 'resources', 'first_party', 'access_token_ttl']));
    expect(fields?.additionalProperties).toBe(false);
  });

  it('creates, reads, lists, updates (If-Match), rotates the secret of and deletes a client; each takes effect at /token at once', async () => {
    const { issuer } = suite.issuer;
    const created = await admin().call<ClientCreated>('POST', '/clients', {
      body: { name: 'billing', grants: ['client_credentials'], scope: 'orders:read', resources: [ORDERS] },
    });
    expect(created.status).toBe(201);
    const id = created.body.client_id;
    expect(created.headers.get('location')).toBe(`${issuer}/admin/v1/clients/${id}`);
    expect(created.body.client_secret).toMatch(/^[A-Za-z0-9_-]{43}$/u);
    const first: Credentials = { id, secret: created.body.client_secret };
    expect(await tokenStatus(suite.issuer.url, first)).toBe(200);

    const shown = await admin().call<ClientView>('GET', `/clients/${id}`);
    expect(shown.status).toBe(200);
    expect(shown.body).toEqual(created.body.client);
    // never a secret after creation
    expect(JSON.stringify(shown.body)).not.toContain(created.body.client_secret);
    const etag = String(shown.headers.get('etag'));
    expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/u);
    expect(created.headers.get('etag')).toBe(etag);

    const listed = await admin().call<{ clients: ClientView[] }>('GET', '/clients');
    expect(listed.body.clients.map((client) => client.client_id)).toContain(id);

    const updated = await admin().call<ClientView>('PATCH', `/clients/${id}`, { body: { name: 'billing-2', access_token_ttl: 300 }, headers: { 'if-match': etag } });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({ name: 'billing-2', access_token_ttl: 300 });
    const newTag = String(updated.headers.get('etag'));
    expect(newTag).not.toBe(etag);
    expect((await admin().call('GET', `/clients/${id}`)).headers.get('etag')).toBe(newTag);

    // a stale tag: nothing written, the current tag in the answer
    const stale = await admin().call<ErrorAnswer>('PATCH', `/clients/${id}`, { body: { name: 'lost-update' }, headers: { 'if-match': etag } });
    expect(stale.status).toBe(412);
    expect(stale.body.error).toBe('precondition_failed');
    expect(stale.headers.get('etag')).toBe(newTag);
    expect((await admin().call<ClientView>('GET', `/clients/${id}`)).body.name).toBe('billing-2');

    // rotation without grace: the old secret never works again
    const rotated = await admin().call<ClientCreated>('POST', `/clients/${id}/secret`, { headers: { 'if-match': newTag } });
    expect(rotated.status).toBe(200);
    const second: Credentials = { id, secret: rotated.body.client_secret };
    expect(await tokenStatus(suite.issuer.url, first)).toBe(401);
    expect(await tokenStatus(suite.issuer.url, second)).toBe(200);
    // with grace: both work meanwhile
    const graced = await admin().call<ClientCreated>('POST', `/clients/${id}/secret`, { body: { grace_seconds: 600 } });
    expect(graced.body.client.previous_secret_expires_at).not.toBeNull();
    const third: Credentials = { id, secret: graced.body.client_secret };
    expect(await tokenStatus(suite.issuer.url, second)).toBe(200);
    expect(await tokenStatus(suite.issuer.url, third)).toBe(200);

    // disabled: refused at once; enabled again: works
    const disabled = await admin().call<ClientView>('PATCH', `/clients/${id}`, { body: { disabled: true } });
    expect(disabled.body.disabled).toBe(true);
    expect(await tokenStatus(suite.issuer.url, third)).toBe(401);
    await admin().call('PATCH', `/clients/${id}`, { body: { disabled: false } });
    expect(await tokenStatus(suite.issuer.url, third)).toBe(200);

    const deleted = await admin().call<{ deleted: boolean }>('DELETE', `/clients/${id}`, { headers: { 'if-match': String((await admin().call('GET', `/clients/${id}`)).headers.get('etag')) } });
    expect(deleted.status).toBe(200);
    expect(deleted.body.deleted).toBe(true);
    expect((await admin().call<ErrorAnswer>('GET', `/clients/${id}`)).status).toBe(404);
    expect(await tokenStatus(suite.issuer.url, third)).toBe(401);
    expect((await admin().call<ErrorAnswer>('DELETE', `/clients/${id}`)).status).toBe(404);
  });

  it('when two changes race with the same If-Match, exactly one is applied and the other answers 412', async () => {
    const created = await admin().call<ClientCreated>('POST', '/clients', { body: { name: 'raced', grants: ['client_credentials'], resources: [ORDERS] } });
    const id = created.body.client_id;
    const etag = String(created.headers.get('etag'));
    const answers = await Promise.all(
      ['first', 'second', 'third', 'fourth'].map((name) => admin().call<ClientView>('PATCH', `/clients/${id}`, { body: { name }, headers: { 'if-match': etag } })),
    );
    expect(answers.map((answer) => answer.status).sort()).toEqual([200, 412, 412, 412]);
    const winner = answers.find((answer) => answer.status === 200)?.body.name;
    expect((await admin().call<ClientView>('GET', `/clients/${id}`)).body.name).toBe(winner);
  });

  it('creates, reads, updates (roles, disabled), sets the password of and deletes a user', async () => {
    const { url } = suite.issuer;
    const web = await registerClient(suite.issuer.stores.clients, { name: 'web', grants: ['password'], resources: [ORDERS], scopes: ['orders:read'] });
    const signIn = async (password: string) => (await postForm(url, { grant_type: 'password', username: 'ada', password }, web)).status;

    const created = await admin().call<{ id: string; user: UserView }>('POST', '/users', { body: { username: 'ada', password: PASSWORD, roles: ['admin'], email: 'ada@example.com' } });
    expect(created.status).toBe(201);
    const { id } = created.body;
    expect(created.headers.get('location')).toBe(`${suite.issuer.issuer}/admin/v1/users/${id}`);
    expect(JSON.stringify(created.body)).not.toContain(PASSWORD);
    expect(await signIn(PASSWORD)).toBe(200);
    expect((await admin().call<ErrorAnswer>('POST', '/users', { body: { username: 'ADA', password: PASSWORD } })).status).toBe(409);

    const shown = await admin().call<UserView>('GET', `/users/${id}`);
    expect(shown.body).toMatchObject({ id, username: 'ada', roles: ['admin'], disabled: false });
    const listed = await admin().call<{ users: UserView[] }>('GET', '/users');
    expect(listed.body.users.map((user) => user.id)).toContain(id);

    const roles = await admin().call<UserView>('PATCH', `/users/${id}`, { body: { roles: ['auditor', 'admin'] }, headers: { 'if-match': String(shown.headers.get('etag')) } });
    expect(roles.body.roles).toEqual(['admin', 'auditor']);
    expect((await admin().call('PATCH', `/users/${id}`, { body: { disabled: true } })).status).toBe(200);
    expect(await signIn(PASSWORD)).toBe(400);
    expect((await admin().call('PATCH', `/users/${id}`, { body: { disabled: false } })).status).toBe(200);

    const reset = await admin().call<{ grants_revoked: boolean }>('POST', `/users/${id}/password`, { body: { password: 'a brand new passphrase' } });
    expect(reset.status).toBe(200);
    expect(reset.body.grants_revoked).toBe(true);
    expect(await signIn(PASSWORD)).toBe(400);
    expect(await signIn('a brand new passphrase')).toBe(200);
    expect((await admin().call<ErrorAnswer>('POST', `/users/${id}/password`, { body: { password: 'short' } })).status).toBe(400);

    const deleted = await admin().call<{ deleted: boolean }>('DELETE', `/users/${id}`);
    expect(deleted.body.deleted).toBe(true);
    expect((await admin().call('GET', `/users/${id}`)).status).toBe(404);
    expect(await signIn('a brand new passphrase')).toBe(400);
    // a path id that cannot be a user's
    expect((await admin().call('GET', '/users/not-a-uuid')).status).toBe(404);
  });

  it('creates, reads, updates the resources of, rotates and revokes an API key', async () => {
    const created = await admin().call<{ id: string; key: string; api_key: ApiKeyView }>('POST', '/api-keys', { body: { name: 'reports', resources: [REPORTS], scope: 'reports:read', expires_in: 3600 } });
    expect(created.status).toBe(201);
    const { id, key } = created.body;
    expect(key).toMatch(/^sgk_/u);
    const shown = await admin().call<ApiKeyView>('GET', `/api-keys/${id}`);
    expect(JSON.stringify(shown.body)).not.toContain(key);
    const updated = await admin().call<ApiKeyView>('PATCH', `/api-keys/${id}`, { body: { resources: [REPORTS, ORDERS] }, headers: { 'if-match': String(shown.headers.get('etag')) } });
    expect(updated.body.resources).toEqual([REPORTS, ORDERS]);
    const listed = await admin().call<{ api_keys: ApiKeyView[] }>('GET', '/api-keys');
    expect(listed.body.api_keys.map((apiKey) => apiKey.id)).toContain(id);
    const service = await registerClient(suite.issuer.stores.clients, { name: 'reports-svc', resources: [REPORTS], scopes: ['reports:read'] });
    const active = async (presented: string) => ((await (await postForm(suite.issuer.url, { token: presented }, service, { path: '/token/introspection' })).json()) as { active: boolean }).active;
    expect(await active(key)).toBe(true);

    // a new value under the same id, everything else kept; the old value is refused at once.
    // Nothing the key's record shows changes, so an If-Match could not tell two rotations apart: refused
    const conditional = await admin().call<ErrorAnswer>('POST', `/api-keys/${id}/secret`, { headers: { 'if-match': String(updated.headers.get('etag')) } });
    expect(conditional.status).toBe(400);
    const rotated = await admin().call<{ id: string; key: string; api_key: ApiKeyView }>('POST', `/api-keys/${id}/secret`);
    expect(rotated.status).toBe(200);
    expect(rotated.body).toEqual({ id, key: expect.stringMatching(new RegExp(`^sgk_${id}_`, 'u')), api_key: { ...updated.body, last_used_at: expect.any(String) } });
    expect(rotated.body.key).not.toBe(key);
    expect(await active(key)).toBe(false);
    expect(await active(rotated.body.key)).toBe(true);
    expect(JSON.stringify((await admin().call('GET', `/api-keys/${id}`)).body)).not.toContain(rotated.body.key);

    const revoked = await admin().call<ApiKeyView>('DELETE', `/api-keys/${id}`);
    expect(revoked.body.revoked_at).not.toBeNull();
    // a resource service's own client learns it is revoked
    expect(await active(rotated.body.key)).toBe(false);
    // a revoked key stays revoked: no new value
    const again = await admin().call<ErrorAnswer>('POST', `/api-keys/${id}/secret`);
    expect(again.status).toBe(409);
    expect(again.body.error).toBe('conflict');
    expect((await admin().call<ErrorAnswer>('POST', '/api-keys/0123456789abcdef0123456789abcdef/secret')).status).toBe(404);
  });

  it('lists, generates and rotates signing keys, refusing a rotation before KEY_PUBLISH_LEAD unless forced, and retires one', async () => {
    const before = await admin().call<{ keys: { kid: string; state: string }[] }>('GET', '/keys');
    const current = before.body.keys.find((key) => key.state === 'current')?.kid;
    const generated = await admin().call<{ kid: string; state: string }>('POST', '/keys');
    expect(generated.status).toBe(201);
    expect(generated.body.state).toBe('next');
    const refused = await admin().call<ErrorAnswer>('POST', '/keys/rotate');
    expect(refused.status).toBe(409);
    expect(refused.body.error).toBe('conflict');
    const rotated = await admin().call<{ current: string; retired: string | null }>('POST', '/keys/rotate', { body: { force: true } });
    expect(rotated.status).toBe(200);
    expect(rotated.body).toMatchObject({ current: generated.body.kid, retired: current });
    // the new key signs at once: a fresh admin token is signed by it and accepted
    const token = await adminToken(suite.issuer.issuer, ready(adminClient), 'sigil:read');
    expect(JSON.parse(Buffer.from(String(token.split('.')[0]), 'base64url').toString()).kid).toBe(generated.body.kid);
    expect((await admin().call('GET', '/keys', { token })).status).toBe(200);
    // the previous admin token, signed by the retired key, still works; retiring again is a no-op answer
    // keys have no ETag: a conditional change is refused, not made unconditionally
    const conditional = await admin().call<ErrorAnswer>('DELETE', `/keys/${String(current)}`, { headers: { 'if-match': '"anything"' } });
    expect(conditional.status).toBe(400);
    expect(conditional.body.error_description).toContain('takes no If-Match');
    expect((await admin().call('DELETE', `/keys/${String(current)}`)).status).toBe(200);
    expect((await admin().call<ErrorAnswer>('DELETE', `/keys/${generated.body.kid}`)).status).toBe(400);
    expect((await admin().call<ErrorAnswer>('DELETE', `/keys/${'A'.repeat(43)}`)).status).toBe(404);
  });

  it('reads sign-in and admin events alike, each admin change naming the admin client as actor, newest first, paged by cursor', async () => {
    const web = await registerClient(suite.issuer.stores.clients, { name: 'audit-web', grants: ['password'], resources: [ORDERS] });
    await admin().call('POST', '/users', { body: { username: 'grace', password: PASSWORD } });
    await postForm(suite.issuer.url, { grant_type: 'password', username: 'grace', password: 'wrong password!' }, web);
    const events = await admin().call<{ events: AuditEvent[]; next_cursor: string | null }>('GET', '/audit-events?limit=2');
    expect(events.body.events.map((event) => event.type)).toEqual(['login.failure', 'admin.user.created']);
    expect(events.body.events[1]?.actor).toBe(ready(adminClient).id);
    expect(JSON.stringify(events.body)).not.toContain(PASSWORD);
    const older = await admin().call<{ events: AuditEvent[] }>('GET', `/audit-events?limit=2&cursor=${String(events.body.next_cursor)}`);
    expect(Number(older.body.events[0]?.id)).toBeLessThan(Number(events.body.events[1]?.id));
    const admins = await admin().call<{ events: AuditEvent[] }>('GET', '/audit-events?type=admin.client.&limit=1000');
    expect(admins.body.events.length).toBeGreaterThan(0);
    expect(admins.body.events.every((event) => event.type.startsWith('admin.client.'))).toBe(true);
    // the first admin client was made with the CLI
    expect(admins.body.events.at(-1)).toMatchObject({ type: 'admin.client.created', actor: 'cli', object: ready(adminClient).id });
  });

  it('pages a list with limit and cursor: every item once, in the order of the whole list', async () => {
    for (const name of ['p1', 'p2', 'p3', 'p4', 'p5']) await admin().call('POST', '/clients', { body: { name, resources: [REPORTS], scope: 'reports:read' } });
    const whole = (await admin().call<{ clients: ClientView[] }>('GET', '/clients?limit=1000')).body.clients.map((client) => client.client_id);
    const paged: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: AdminResponse<{ clients: ClientView[]; next_cursor: string | null }> = await admin().call('GET', `/clients?limit=2${cursor === null ? '' : `&cursor=${cursor}`}`);
      expect(page.body.clients.length).toBeLessThanOrEqual(2);
      paged.push(...page.body.clients.map((client) => client.client_id));
      cursor = page.body.next_cursor;
      pages += 1;
    } while (cursor !== null);
    expect(paged).toEqual(whole);
    expect(pages).toBe(Math.ceil(whole.length / 2));
    // the CLI lists the same clients in the same order
    const cli = await sigilJson<{ clients: ClientView[] }>(['clients', 'list'], env());
    expect(cli.clients.map((client) => client.client_id)).toEqual(whole);
    expect((await admin().call<ErrorAnswer>('GET', '/clients?cursor=bm9wZQ')).status).toBe(400);
    expect((await admin().call<ErrorAnswer>('GET', '/clients?limit=0')).body.fields).toEqual([{ in: 'query', field: 'limit', message: 'a limit is a whole number from 1 to 1000' }]);
    expect((await admin().call<ErrorAnswer>('GET', '/clients?limit=1&limit=2')).status).toBe(400);
    expect((await admin().call<ErrorAnswer>('GET', '/clients?sort=name')).body.fields?.[0]).toMatchObject({ in: 'query', field: 'sort' });
  });

  it('takes post_logout_redirect_uris on create and update, shows them, and names the field (and the rule) of a bad one', async () => {
    const web = { name: 'web', grants: ['authorization_code'], redirect_uris: ['https://app.example.com/cb'] };
    const created = await admin().call<ClientCreated>('POST', '/clients', { body: { ...web, post_logout_redirect_uris: ['https://app.example.com/bye'] } });
    expect(created.status).toBe(201);
    const path = `/clients/${created.body.client_id}`;
    expect((await admin().call<Record<string, unknown>>('GET', path)).body).toMatchObject({ post_logout_redirect_uris: ['https://app.example.com/bye'] });
    const updated = await admin().call<Record<string, unknown>>('PATCH', path, { body: { post_logout_redirect_uris: ['http://127.0.0.1:5173/'] } });
    expect(updated.body).toMatchObject({ post_logout_redirect_uris: ['http://127.0.0.1:5173/'] });
    const bad = await admin().call<ErrorAnswer>('POST', '/clients', { body: { ...web, post_logout_redirect_uris: ['https://app.example.com/bye', 'http://app.example.com/bye'] } });
    expect(bad.status).toBe(400);
    expect(bad.body.fields).toEqual([{ in: 'body', field: 'post_logout_redirect_uris[1]', message: expect.stringMatching(/^a post-logout redirect URI must be https/u) }]);
    const rule = await admin().call<ErrorAnswer>('POST', '/clients', { body: { name: 'x', grants: ['client_credentials'], post_logout_redirect_uris: ['https://app.example.com/bye'] } });
    expect(rule.body.fields).toEqual([{ in: 'body', message: 'post_logout_redirect_uris is only meaningful with the authorization_code grant' }]);
  });

  it('answers malformed JSON, unknown fields, bad values and control characters with 400 naming each field, and writes nothing', async () => {
    const count = async () => (await admin().call<{ clients: unknown[] }>('GET', '/clients?limit=1000')).body.clients.length;
    const before = await count();
    const malformed = await admin().call<ErrorAnswer>('POST', '/clients', { raw: '{"name": "x",', headers: { 'content-type': 'application/json' } });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error).toBe('invalid_request');
    const unknown = await admin().call<ErrorAnswer>('POST', '/clients', { body: { name: 'x', redirectUris: [], colour: 'blue' } });
    expect(unknown.status).toBe(400);
    // every field at fault in one answer: the unmappable name, and what the schema finds in the rest
    expect(unknown.body.fields).toEqual([
      { in: 'body', field: 'redirectUris', message: 'unknown field' },
      { in: 'body', field: 'colour', message: 'unknown field' },
    ]);
    const unknownSnake = await admin().call<ErrorAnswer>('POST', '/clients', { body: { name: 'x', colour: 'blue' } });
    expect(unknownSnake.body.fields).toEqual([{ in: 'body', field: 'colour', message: 'unknown field' }]);
    const bad = await admin().call<ErrorAnswer>('POST', '/clients', { body: { name: 'x', grants: ['implicit'], redirect_uris: ['not a uri'], access_token_ttl: 5 } });
    expect(bad.status).toBe(400);
    expect(bad.body.fields?.map((field) => field.field)).toEqual(expect.arrayContaining(['grants[0]', 'redirect_uris[0]', 'access_token_ttl']));
    expect(bad.body.error_description).not.toMatch(/redirectUris|accessTokenTtl|--/u);
    // a rule between fields: no field named, the API's words
    const rule = await admin().call<ErrorAnswer>('POST', '/clients', { body: { name: 'x', grants: ['authorization_code'] } });
    expect(rule.body.fields).toEqual([{ in: 'body', message: 'the authorization_code grant needs at least one redirect_uris' }]);
    const nul = await admin().call<ErrorAnswer>('POST', '/clients', { raw: '{"name":"a\\u0000b"}', headers: { 'content-type': 'application/json' } });
    expect(nul.status).toBe(400);
    expect(nul.body.fields).toEqual([{ in: 'body', field: 'name', message: 'control characters are not allowed' }]);
    const surrogate = await admin().call<ErrorAnswer>('POST', '/clients', { raw: '{"name":"a\\ud800"}', headers: { 'content-type': 'application/json' } });
    expect(surrogate.status).toBe(400);
    expect((await admin().call<ErrorAnswer>('POST', '/clients', { raw: '[1]', headers: { 'content-type': 'application/json' } })).status).toBe(400);
    expect((await admin().call<ErrorAnswer>('POST', '/clients', { raw: 'name=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } })).status).toBe(415);
    expect((await admin().call<ErrorAnswer>('POST', '/clients', { raw: JSON.stringify({ name: 'x'.repeat(70_000) }), headers: { 'content-type': 'application/json' } })).status).toBe(400);
    // the path's id cannot be set from the body
    const created = await admin().call<ClientCreated>('POST', '/clients', { body: { name: 'owned', resources: [REPORTS] } });
    const moved = await admin().call<ErrorAnswer>('PATCH', `/clients/${created.body.client_id}`, { body: { id: '0'.repeat(32), name: 'y' } });
    expect(moved.body.fields).toEqual([{ in: 'body', field: 'id', message: 'unknown field' }]);
    const nothing = await admin().call<ErrorAnswer>('PATCH', `/clients/${created.body.client_id}`, { body: {} });
    expect(nothing.status).toBe(400);
    expect((await admin().call<ErrorAnswer>('PATCH', `/clients/${created.body.client_id}`, { body: { name: 'y' }, headers: { 'if-match': 'not-a-tag' } })).status).toBe(400);
    expect(await count()).toBe(before + 1);
    expect((await admin().call<ErrorAnswer>('PUT', '/clients')).status).toBe(405);
    expect((await admin().call<ErrorAnswer>('GET', '/nothing-here')).status).toBe(404);
  });

  it('refuses a sigil:read token on writes (403 insufficient_scope) and serves it reads', async () => {
    const reader = await adminToken(suite.issuer.issuer, ready(adminClient), 'sigil:read');
    expect((await admin().call('GET', '/clients', { token: reader })).status).toBe(200);
    const write = await admin().call<ErrorAnswer>('POST', '/clients', { token: reader, body: { name: 'nope', resources: [REPORTS] } });
    expect(write.status).toBe(403);
    expect(write.body.error).toBe('insufficient_scope');
    expect(write.headers.get('www-authenticate')).toBe(`Bearer realm="${suite.issuer.issuer}/admin", error="insufficient_scope", error_description="requires scope sigil:admin", scope="sigil:admin"`);
    expect((await admin().call('DELETE', '/keys/x', { token: reader })).status).toBe(403);
  });

  it('refuses no token, a token of another audience, a token without admin scopes, and the token of a disabled admin client (RFC 6750)', async () => {
    const { issuer, url, stores } = suite.issuer;
    const none = await admin().call<ErrorAnswer>('GET', '/clients', { token: '' });
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe(`Bearer realm="${issuer}/admin"`);
    // a machine with sigil:admin registered for orders-api: its token is for orders-api
    const orders = await registerClient(stores.clients, { name: 'orders-machine', grants: ['client_credentials'], resources: [ORDERS, `${issuer}/admin`], scopes: ['orders:read', 'sigil:admin'] });
    const ordersToken = ((await (await postForm(url, { grant_type: 'client_credentials', resource: ORDERS }, orders)).json()) as { access_token: string }).access_token;
    // least privilege: the admin scopes belong to the admin audience only
    expect(claimsOf(ordersToken)['scope']).toBe('orders:read');
    const other = await admin().call<ErrorAnswer>('GET', '/clients', { token: ordersToken });
    expect(other.status).toBe(401);
    expect(other.headers.get('www-authenticate')).toMatch(/^Bearer realm="[^"]+", error="invalid_token"/u);
    // registered for the admin audience with no admin scope: its token carries none
    const plain = await registerClient(stores.clients, { name: 'no-admin-scope', grants: ['client_credentials'], resources: [`${issuer}/admin`], scopes: ['orders:read'] });
    const plainToken = await adminToken(issuer, plain);
    expect(claimsOf(plainToken)['scope'] ?? '').toBe('');
    expect((await admin().call<ErrorAnswer>('GET', '/clients', { token: plainToken })).status).toBe(403);
    expect((await admin().call<ErrorAnswer>('GET', '/clients', { token: `${plainToken.slice(0, -4)}AAAA` })).status).toBe(401);
    // an admin client disabled (here by the CLI): its unexpired token stops working at once
    const second = await sigilJson<ClientCreated>(['clients', 'create', '--name', 'second-admin', '--grant', 'client_credentials', '--scope', 'sigil:admin', '--resource', `${issuer}/admin`], testEnv(suite.database));
    const secondToken = await adminToken(issuer, { id: second.client_id, secret: second.client_secret });
    expect((await admin().call('GET', '/clients', { token: secondToken })).status).toBe(200);
    await sigilJson(['clients', 'disable', second.client_id], testEnv(suite.database));
    expect((await admin().call<ErrorAnswer>('GET', '/clients', { token: secondToken })).status).toBe(401);
    // a token its client revoked (RFC 7009) stops working at once too
    const revocable = await adminToken(issuer, ready(adminClient), 'sigil:read');
    expect((await admin().call('GET', '/keys', { token: revocable })).status).toBe(200);
    expect((await postForm(url, { token: revocable }, ready(adminClient), { path: '/token/revocation' })).status).toBe(200);
    expect((await admin().call<ErrorAnswer>('GET', '/keys', { token: revocable })).status).toBe(401);
  });

  it('takes only a client\'s own token, and only for what the client is still registered for', async () => {
    const { issuer, url } = suite.issuer;
    // a person's token through a client registered for the admin audience speaks for the person: refused
    const portal = await registerClient(suite.issuer.stores.clients, { name: 'portal', grants: ['password'], resources: [`${issuer}/admin`], scopes: ['sigil:admin'] });
    await admin().call('POST', '/users', { body: { username: 'nobody', password: PASSWORD } });
    const personal = (await (await postForm(url, { grant_type: 'password', username: 'nobody', password: PASSWORD, resource: `${issuer}/admin` }, portal)).json()) as { access_token: string };
    expect(claimsOf(personal.access_token)['scope']).toBe('sigil:admin');
    const asPerson = await admin().call<ErrorAnswer>('GET', '/clients', { token: personal.access_token });
    expect(asPerson.status).toBe(401);
    expect(asPerson.headers.get('www-authenticate')).toContain('error="invalid_token"');

    // a scope taken from the client is taken from its tokens already issued
    const created = await admin().call<ClientCreated>('POST', '/clients', { body: { name: 'shrinking', grants: ['client_credentials'], scope: 'sigil:admin sigil:read', resources: [`${issuer}/admin`] } });
    const token = await adminToken(issuer, { id: created.body.client_id, secret: created.body.client_secret }, 'sigil:admin sigil:read');
    expect((await admin().call('POST', '/keys/rotate', { token })).status).toBe(409);
    await admin().call('PATCH', `/clients/${created.body.client_id}`, { body: { scope: 'sigil:read' } });
    expect((await admin().call<ErrorAnswer>('POST', '/keys/rotate', { token })).status).toBe(403);
    expect((await admin().call('GET', '/keys', { token })).status).toBe(200);
    // and the admin audience taken away: nothing
    await admin().call('PATCH', `/clients/${created.body.client_id}`, { body: { resources: [ORDERS] } });
    expect((await admin().call<ErrorAnswer>('GET', '/keys', { token })).status).toBe(401);
  });

  it('refuses tokens it did not issue as they are, even when signed with its own key: several audiences, an iat in the future, a client_id that is no string', async () => {
    const { issuer } = suite.issuer;
    const current = (await readKeys(suite.database.keysDir)).find((key) => key.state === 'current');
    const key = await importJWK({ ...current?.jwk }, 'RS256');
    const now = Math.floor(Date.now() / 1000);
    const forge = (claims: Record<string, unknown>) =>
      new SignJWT({ client_id: ready(adminClient).id, scope: 'sigil:admin', jti: `forged-${Math.random()}`, ...claims })
        .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: String(current?.jwk.kid) })
        .setIssuer(issuer)
        .setSubject(typeof claims['sub'] === 'string' ? claims['sub'] : ready(adminClient).id)
        .setIssuedAt(typeof claims['iat'] === 'number' ? claims['iat'] : now)
        .setExpirationTime(now + 300)
        .setAudience((claims['aud'] as string | string[] | undefined) ?? `${issuer}/admin`)
        .sign(key);
    // the control: a token as the issuer makes them passes
    expect((await admin().call('GET', '/keys', { token: await forge({}) })).status).toBe(200);
    for (const claims of [{ aud: [`${issuer}/admin`, ORDERS] }, { iat: now + 3600 }, { client_id: { id: ready(adminClient).id } }]) {
      const answer = await admin().call<ErrorAnswer>('GET', '/keys', { token: await forge(claims) });
      expect([JSON.stringify(claims), answer.status]).toEqual([JSON.stringify(claims), 401]);
    }
  });

  it('answers input the database could not hold with 400, never a 5xx', async () => {
    const status = async (path: string, options: Parameters<AdminApi['call']>[2] = {}) => (await admin().call<ErrorAnswer>(options.body === undefined && options.raw === undefined ? 'GET' : 'POST', path, options)).status;
    expect(await status('/audit-events?cursor=9223372036854775808')).toBe(400);
    expect(await status('/audit-events?cursor=9223372036854775807')).toBe(200);
    expect(await status('/audit-events?since=0000-01-01')).toBe(400);
    expect(await status('/audit-events?since=9999-12-31T23:59:59-23:59')).toBe(400);
    const yearZero = Buffer.from(JSON.stringify(['0000-01-01T00:00:00.000Z', '0'.repeat(32)])).toString('base64url');
    expect(await status(`/clients?cursor=${yearZero}`)).toBe(400);
    // the shape is wrong and the refinements still run: no exception from them either
    expect(await status('/audit-events?cursor=abc')).toBe(400);
    expect(await status(`/clients?cursor=${Buffer.from(JSON.stringify(['garbage', '0'.repeat(32)])).toString('base64url')}`)).toBe(400);
    expect(await status('/audit-events/99999999999')).toBe(404);
    // nesting and odd names
    expect(await status('/clients', { raw: `{"name":"x","roles":${'['.repeat(5000)}${']'.repeat(5000)}}`, headers: { 'content-type': 'application/json' } })).toBe(400);
    const odd = await admin().call<ErrorAnswer>('POST', '/clients', { body: { name: 'x', constructor: 1, scopes: ['a'] } });
    expect(odd.body.fields).toEqual([
      { in: 'body', field: 'scopes', message: 'unknown field' },
      { in: 'body', field: 'constructor', message: 'unknown field' },
    ]);
    for (const name of ['a\u0085b', 'a\u202eb', 'a\u2028b']) {
      expect(await status('/clients', { raw: `{"name":"${name}"}`, headers: { 'content-type': 'application/json' } })).toBe(400);
    }
    // an API key cannot carry the issuer's own scopes
    const reserved = await admin().call<ErrorAnswer>('POST', '/api-keys', { body: { name: 'k', resources: [ORDERS], scope: 'sigil:admin' } });
    expect(reserved.status).toBe(400);
    expect(reserved.body.fields?.[0]?.field).toBe('scope');
  });

  it('reads one signing key and one audit event; serves the exact path only', async () => {
    const { keys } = (await admin().call<{ keys: { kid: string }[] }>('GET', '/keys')).body;
    const first = keys[0]?.kid ?? '';
    expect((await admin().call<{ kid: string }>('GET', `/keys/${first}`)).body.kid).toBe(first);
    expect((await admin().call('GET', `/keys/${'B'.repeat(43)}`)).status).toBe(404);
    const { events } = (await admin().call<{ events: AuditEvent[] }>('GET', '/audit-events?limit=1')).body;
    const event = events[0];
    expect((await admin().call<AuditEvent>('GET', `/audit-events/${String(event?.id)}`)).body).toEqual(event);
    // another case is another path: not the admin API
    const upper = await fetch(`${suite.issuer.url}/ADMIN/v1/clients`, { headers: { authorization: `Bearer ${admin().token}` } });
    expect(upper.status).toBe(404);
  });

  it('gives the same result through the CLI, the admin socket and the API for the same command', async () => {
    const created = await admin().call<ClientCreated>('POST', '/clients', { body: { name: 'same', grants: ['client_credentials'], resources: [ORDERS], scope: 'orders:read' } });
    const id = created.body.client_id;
    const viaApi = (await admin().call('GET', `/clients/${id}`)).body;
    expect(await sigilJson(['clients', 'show', id], env())).toEqual(viaApi);
    if (backend.name === 'pglite') {
      // the embedded database's owner serves the socket the CLI used
      expect(await sendAdminCommand(suite.database.dataDir, 'clients.show', { id })).toEqual({ ok: true, result: viaApi });
    }
    // the same rule refuses the same bad value everywhere
    const cli = await sigil(['clients', 'update', id, '--access-token-ttl', '5'], env());
    const viaApiRefusal = await admin().call<ErrorAnswer>('PATCH', `/clients/${id}`, { body: { access_token_ttl: 5 } });
    expect(cli.code).toBe(2);
    expect(cli.stderr).toContain('--access-token-ttl is at least 60 seconds');
    expect(viaApiRefusal.body.fields).toEqual([{ in: 'body', field: 'access_token_ttl', message: 'access_token_ttl is at least 60 seconds' }]);
  });
});

describeOnPostgres('the admin API on a cluster ($name)', (backend) => {
  it('when a client is disabled through the API while two workers serve, every worker refuses it at once', async () => {
    const database = await backend.create();
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const issuer = spawnIssuer({ ...testEnv(database), PORT: String(port), ISSUER: url, WEB_CONCURRENCY: '2', LOG_LEVEL: 'info' });
    try {
      await issuer.waitForOutput(/"msg":"sigil issuer listening"/u, 2);
      const provisioner = await sigilJson<ClientCreated>(['clients', 'create', '--name', 'provisioner', '--grant', 'client_credentials', '--scope', 'sigil:admin', '--resource', `${url}/admin`], testEnv(database));
      const token = await adminToken(url, { id: provisioner.client_id, secret: provisioner.client_secret });
      const call = (method: string, path: string, body?: unknown) =>
        fetch(`${url}/admin/v1${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
      const created = (await (await call('POST', '/clients', { name: 'c', grants: ['client_credentials'], resources: [ORDERS] })).json()) as ClientCreated;
      // each request on a connection of its own: the primary hands connections to the workers in turn
      const statuses = () =>
        Promise.all(
          Array.from({ length: 8 }, () =>
            request(`${url}/token`, {
              method: 'POST',
              headers: { authorization: basicAuth(created.client_id, created.client_secret), 'content-type': 'application/x-www-form-urlencoded' },
              body: 'grant_type=client_credentials',
            }).then((response) => response.status),
          ),
        );
      expect(await statuses()).toEqual(Array(8).fill(200));
      expect((await call('PATCH', `/clients/${created.client_id}`, { disabled: true })).status).toBe(200);
      expect(await statuses()).toEqual(Array(8).fill(401));
    } finally {
      issuer.child.kill('SIGTERM');
      await issuer.exited;
      await database.drop();
    }
  });
});
