import { beforeAll, describe, expect, it } from '@jest/globals';

import { createApiKey } from '../../src/domain/api-keys.js';
import { PasswordHasher } from '../../src/domain/passwords.js';
import { createUser } from '../../src/domain/users.js';
import { backends } from '../support/backends.js';
import { issuerSuite } from '../support/issuer.js';
import { postForm, registerClient, type Credentials } from '../support/oauth.js';

const ORDERS = 'http://localhost:4001';
const REPORTS = 'http://localhost:4002';
const PASSWORD = 'correct horse battery staple';

describe.each(backends)('introspection (RFC 7662) ($name)', (backend) => {
  const suite = issuerSuite(backend);
  let machine: Credentials;
  let mobile: Credentials;
  let spa: Credentials;
  let ordersService: Credentials;
  let reportsService: Credentials;

  const answer = (client: Credentials, token: string) => postForm(suite.issuer.url, { token }, client, { path: '/token/introspection' });
  const introspect = async (client: Credentials, token: string) => {
    const response = await answer(client, token);
    expect(response.status).toBe(200);
    return (await response.json()) as Record<string, unknown>;
  };
  const client = (input: Parameters<typeof registerClient>[1]) => registerClient(suite.issuer.stores.clients, input);
  const apiKey = (input: Parameters<typeof createApiKey>[1]) => createApiKey(suite.issuer.stores.apiKeys, input);
  const lastUsed = async (id: string) => {
    const [row] = await suite.issuer.db('api_keys').where({ id }).select<{ last_used_at: Date | null }[]>('last_used_at');
    return row?.last_used_at === null || row?.last_used_at === undefined ? null : new Date(row.last_used_at).toISOString();
  };
  const userTokens = async () => {
    const response = await postForm(suite.issuer.url, { grant_type: 'password', username: 'alice', password: PASSWORD }, mobile);
    expect(response.status).toBe(200);
    return (await response.json()) as { access_token: string; refresh_token: string };
  };

  beforeAll(async () => {
    const { stores } = suite.issuer;
    machine = await client({ name: 'machine', grants: ['client_credentials'], scopes: ['orders:read'], roles: ['admin'], resources: [ORDERS] });
    mobile = await client({ name: 'mobile', grants: ['password', 'refresh_token'], scopes: ['orders:read'], resources: [ORDERS] });
    spa = await client({ name: 'spa', grants: ['authorization_code'], redirectUris: ['http://127.0.0.1:8080/cb'], resources: [ORDERS], public: true });
    ordersService = await client({ name: 'orders-api', grants: ['client_credentials'], resources: [ORDERS] });
    reportsService = await client({ name: 'reports-api', grants: ['client_credentials'], resources: [REPORTS] });
    await createUser(stores.users, { username: 'alice', password: PASSWORD, roles: ['admin'] }, new PasswordHasher());
  });

  it('when a resource service of one of its resources introspects an API key, answers active with its scopes, roles and resources (aud) (S16)', async () => {
    const { key, record } = await apiKey({ name: 'ci', owner: 'platform', resources: [ORDERS, REPORTS], scopes: ['orders:read'], roles: ['reader'] });
    const expected = {
      active: true,
      token_type: 'api_key',
      iss: suite.issuer.issuer,
      sub: record.id,
      aud: [ORDERS, REPORTS],
      api_key_id: record.id,
      name: 'ci',
      scope: 'orders:read',
      roles: ['reader'],
      iat: Math.floor(record.createdAt.getTime() / 1000),
    };
    expect(await introspect(ordersService, key)).toEqual(expected);
    expect(await introspect(reportsService, key)).toEqual(expected);
    expect(await lastUsed(record.id)).not.toBeNull();
  });

  it('when a client of another resource introspects an API key, answers active: false and does not record a use (S16)', async () => {
    const { key, record } = await apiKey({ name: 'reports-bot', resources: [REPORTS], scopes: ['reports:read'], roles: ['admin'] });
    expect(await introspect(ordersService, key)).toEqual({ active: false });
    expect(await introspect(machine, key)).toEqual({ active: false });
    expect(await lastUsed(record.id)).toBeNull();
  });

  it('when an API key has no resources (made before keys named their services), every client gets active: false until it is given some (S16)', async () => {
    const { key, record } = await apiKey({ name: 'legacy', resources: [ORDERS] });
    await suite.issuer.db('api_keys').where({ id: record.id }).update({ resources: JSON.stringify([]) });
    for (const caller of [ordersService, reportsService, machine]) expect(await introspect(caller, key)).toEqual({ active: false });
    expect(await lastUsed(record.id)).toBeNull();
    await suite.issuer.stores.apiKeys.setResources(record.id, [ORDERS]);
    expect(await introspect(ordersService, key)).toMatchObject({ active: true, aud: [ORDERS] });
  });

  it("when an API key is introspected twice within a minute, last_used_at is written once; after a minute, again (S16)", async () => {
    const { key, record } = await apiKey({ name: 'busy', resources: [ORDERS] });
    expect(await introspect(ordersService, key)).toMatchObject({ active: true });
    const first = await lastUsed(record.id);
    expect(first).not.toBeNull();
    expect(await introspect(ordersService, key)).toMatchObject({ active: true });
    // the database's clock moved on between the two statements: an equal value means no second write
    expect(await lastUsed(record.id)).toBe(first);
    const minuteAgo = new Date(Date.now() - 61_000);
    await suite.issuer.db('api_keys').where({ id: record.id }).update({ last_used_at: minuteAgo });
    expect(await introspect(ordersService, key)).toMatchObject({ active: true });
    expect(Date.parse((await lastUsed(record.id)) ?? '')).toBeGreaterThan(minuteAgo.getTime());
  });

  it('when an API key is revoked, expired, forged or unknown, answers active: false', async () => {
    const revoked = await apiKey({ name: 'revoked', resources: [ORDERS] });
    await suite.issuer.stores.apiKeys.revoke(revoked.record.id);
    const expired = await apiKey({ name: 'expired', resources: [ORDERS], expiresIn: 60 });
    await suite.issuer.db('api_keys').where({ id: expired.record.id }).update({ expires_at: new Date(Date.now() - 1000) });
    const live = await apiKey({ name: 'live', resources: [ORDERS] });
    for (const key of [revoked.key, expired.key, `${live.key.slice(0, -1)}${live.key.endsWith('A') ? 'B' : 'A'}`, `sgk_${'0'.repeat(32)}_${'A'.repeat(43)}`, 'sgk_garbage']) {
      expect(await introspect(ordersService, key)).toEqual({ active: false });
    }
  });

  it('when a JWT access token is introspected by its client or its audience, answers active with its claims', async () => {
    const response = await postForm(suite.issuer.url, { grant_type: 'client_credentials' }, machine);
    const { access_token: jwt } = (await response.json()) as { access_token: string };
    const expected = { active: true, token_type: 'Bearer', iss: suite.issuer.issuer, sub: machine.id, client_id: machine.id, aud: ORDERS, scope: 'orders:read', roles: ['admin'] };
    expect(await introspect(machine, jwt)).toMatchObject(expected);
    expect(await introspect(ordersService, jwt)).toMatchObject(expected);
    expect(await introspect(ordersService, `${jwt.slice(0, -2)}${jwt.endsWith('AA') ? 'BB' : 'AA'}`)).toEqual({ active: false });
  });

  it("when a user's access token or refresh token is introspected by its client or by a service of its audience, answers active with the user's claims (S16)", async () => {
    const { access_token: jwt, refresh_token: refresh } = await userTokens();
    for (const caller of [mobile, ordersService]) {
      expect(await introspect(caller, jwt)).toMatchObject({ active: true, token_type: 'Bearer', client_id: mobile.id, aud: ORDERS, roles: ['admin'] });
      expect(await introspect(caller, refresh)).toMatchObject({ active: true, client_id: mobile.id, scope: 'orders:read', sub: expect.any(String) });
    }
  });

  it("when a confidential client of another audience introspects a user's access token, refresh token or API key, answers exactly active: false (S16)", async () => {
    const { access_token: jwt, refresh_token: refresh } = await userTokens();
    const { key } = await apiKey({ name: 'orders-bot', resources: [ORDERS], roles: ['admin'] });
    for (const token of [jwt, refresh, key]) expect(await introspect(reportsService, token)).toEqual({ active: false });
  });

  it('when a public client introspects anything, even a token of its own audience, answers 401 invalid_client (S16)', async () => {
    const { access_token: jwt, refresh_token: refresh } = await userTokens();
    const { key } = await apiKey({ name: 'seen-by-spa', resources: [ORDERS] });
    for (const token of [jwt, refresh, key, 'not-a-token']) {
      const response = await postForm(suite.issuer.url, { token, client_id: spa.id }, undefined, { path: '/token/introspection' });
      expect(response.status).toBe(401);
      expect(await response.json()).toEqual({ error: 'invalid_client', error_description: 'client authentication failed' });
    }
  });

  it('when the caller does not authenticate, answers 401 invalid_client', async () => {
    const response = await answer({ id: ordersService.id, secret: 'wrong' }, 'sgk_x');
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ error: 'invalid_client', error_description: 'client authentication failed' });
  });
});
