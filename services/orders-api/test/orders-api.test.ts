import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { resourceServiceConfig, serve } from '@sigil/resource-kit';
import { decodeProtectedHeader } from 'jose';
import { pino } from 'pino';

import { createApiKey } from '../../issuer/src/domain/api-keys.js';
import { createClient } from '../../issuer/src/domain/clients.js';
import { FileKeyStore } from '../../issuer/src/keys/file-store.js';
import { rotateKeys } from '../../issuer/src/keys/lifecycle.js';
import { backends, type TestDatabase } from '../../issuer/test/support/backends.js';
import { basicAuth, eventually } from '../../issuer/test/support/http.js';
import { startTestIssuer, type TestIssuer } from '../../issuer/test/support/issuer.js';
import { createOrdersApp } from '../src/app.js';

const ORDERS = 'http://localhost:4001';
const REPORTS = 'http://localhost:4002';

interface Credentials {
  id: string;
  secret: string;
}

describe.each(backends)('orders-api behind a real issuer ($name)', (backend) => {
  let database: TestDatabase;
  let issuer: TestIssuer;
  let service: { url: string; close(): Promise<void> };
  let machine: Credentials;
  let reader: Credentials;
  let apiKey: { id: string; key: string };
  let reportsKey: string;

  const token = async (client: Credentials, form: Record<string, string> = {}) => {
    const response = await fetch(`${issuer.url}/token`, {
      method: 'POST',
      headers: { authorization: basicAuth(client.id, client.secret) },
      body: new URLSearchParams({ grant_type: 'client_credentials', ...form }),
    });
    expect(response.status).toBe(200);
    return ((await response.json()) as { access_token: string }).access_token;
  };
  const call = (path: string, headers: Record<string, string> = {}, body?: unknown) =>
    fetch(`${service.url}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  const bearer = (jwt: string) => ({ authorization: `Bearer ${jwt}` });
  const created = async (input: Parameters<typeof createClient>[1]) => {
    const { client, clientSecret } = await createClient(issuer.stores.clients, input);
    return { id: client.id, secret: clientSecret ?? '' };
  };

  beforeAll(async () => {
    database = await backend.create();
    issuer = await startTestIssuer(database);
    machine = await created({
      name: 'fulfilment',
      grants: ['client_credentials'],
      scopes: ['orders:read', 'orders:write'],
      roles: ['admin'],
      resources: [ORDERS, REPORTS],
    });
    reader = await created({ name: 'dashboard', grants: ['client_credentials'], scopes: ['orders:read'], resources: [ORDERS] });
    // a resource service's own client: no grant (it only introspects and reads the feed), and the scopes of its audience
    const guardClient = await created({ name: 'orders-api', grants: [], scopes: ['orders:read', 'orders:write'], resources: [ORDERS] });
    const key = await createApiKey(issuer.stores.apiKeys, { name: 'ci-bot', resources: [ORDERS], scopes: ['orders:read', 'orders:write'], roles: ['admin'] });
    apiKey = { id: key.record.id, key: key.key };
    // the same role and scope names, but made for reports-api only
    reportsKey = (await createApiKey(issuer.stores.apiKeys, { name: 'reports-bot', resources: [REPORTS], scopes: ['reports:read'], roles: ['admin'] })).key;
    const config = resourceServiceConfig(
      { ISSUER: issuer.issuer, AUDIENCE: ORDERS, GUARD_CLIENT_ID: guardClient.id, GUARD_CLIENT_SECRET: guardClient.secret },
      { port: 0, audience: ORDERS },
    );
    const { app } = createOrdersApp({ config, logger: pino({ level: 'silent' }), guard: { apiKeyCache: { positiveTtlMs: 500, negativeTtlMs: 500 } } });
    service = await serve(app, 0);
  });

  afterAll(async () => {
    await service?.close();
    await issuer?.close();
    await database?.drop();
  });

  it('when a machine client has the scopes and the admin role, it reads, writes and sees stats', async () => {
    const jwt = await token(machine);
    expect((await call('/orders', bearer(jwt))).status).toBe(200);
    const placed = await call('/orders', bearer(jwt), { item: 'widget', quantity: 3 });
    expect(placed.status).toBe(201);
    expect(await placed.json()).toMatchObject({ item: 'widget', quantity: 3, placedBy: machine.id });
    const stats = await call('/orders/admin/stats', bearer(jwt));
    expect(stats.status).toBe(200);
    expect(await stats.json()).toMatchObject({ orders: expect.any(Number), quantity: expect.any(Number) });
  });

  it('when the order is not valid, answers 400 invalid_request and places nothing', async () => {
    const jwt = await token(machine);
    const before = ((await (await call('/orders', bearer(jwt))).json()) as { orders: unknown[] }).orders.length;
    const response = await call('/orders', bearer(jwt), { item: '', quantity: 0, extra: true });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: 'invalid_request' });
    expect(((await (await call('/orders', bearer(jwt))).json()) as { orders: unknown[] }).orders).toHaveLength(before);
  });

  it('when a client lacks orders:write or the admin role, answers 403 insufficient_scope', async () => {
    const jwt = await token(reader);
    const write = await call('/orders', bearer(jwt), { item: 'widget', quantity: 1 });
    expect(write.status).toBe(403);
    expect(write.headers.get('www-authenticate')).toBe(
      `Bearer realm="${ORDERS}", error="insufficient_scope", error_description="requires scope orders:write", scope="orders:write"`,
    );
    expect((await call('/orders/admin/stats', bearer(jwt))).status).toBe(403);
  });

  it('when the token was minted for another service (aud), answers 401 invalid_token (R1)', async () => {
    const response = await call('/orders', bearer(await token(machine, { resource: REPORTS })));
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });

  it('when an API key is sent in X-API-Key, it acts with its own scopes and roles', async () => {
    const placed = await call('/orders', { 'x-api-key': apiKey.key }, { item: 'gadget', quantity: 1 });
    expect(placed.status).toBe(201);
    expect(await placed.json()).toMatchObject({ placedBy: apiKey.id });
    expect((await call('/orders/admin/stats', { 'x-api-key': apiKey.key })).status).toBe(200);
  });

  it('when an API key made for reports-api (same role admin) is sent, answers 401 invalid_token: its resources do not name orders-api (R9)', async () => {
    for (const path of ['/orders/admin/stats', '/orders']) {
      const response = await call(path, { 'x-api-key': reportsKey });
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe(
        `Bearer realm="${ORDERS}", error="invalid_token", error_description="the access token or API key is invalid"`,
      );
    }
  });

  it('when an API key made before keys named their services is sent, answers 401 until it is given orders-api (R9)', async () => {
    const { key, record } = await createApiKey(issuer.stores.apiKeys, { name: 'legacy', resources: [ORDERS], scopes: ['orders:read'] });
    // what the migration leaves on a key made before it: no resources
    await issuer.db('api_keys').where({ id: record.id }).update({ resources: JSON.stringify([]) });
    expect((await call('/orders', { 'x-api-key': key })).status).toBe(401);
    await issuer.stores.apiKeys.setResources(record.id, [ORDERS]);
    // the refusal is cached for the service's negative cache time (500 ms here)
    await eventually(async () => ((await call('/orders', { 'x-api-key': key })).status === 200 ? true : undefined), 10_000);
  });

  it('when an API key is sent in ?api_key=, only the route that opts in accepts it', async () => {
    expect((await call(`/orders?api_key=${apiKey.key}`)).status).toBe(200);
    const post = await call(`/orders?api_key=${apiKey.key}`, {}, { item: 'x', quantity: 1 });
    expect(post.status).toBe(401);
    expect(post.headers.get('www-authenticate')).toBe(`Bearer realm="${ORDERS}"`);
  });

  it('when an API key is bogus, answers 401 invalid_token', async () => {
    const forged = `${apiKey.key.slice(0, -1)}${apiKey.key.endsWith('A') ? 'B' : 'A'}`;
    const response = await call('/orders', { 'x-api-key': forged });
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ error: 'invalid_token', error_description: 'the access token or API key is invalid' });
    expect((await call('/orders', { 'x-api-key': 'not-a-key' })).status).toBe(401);
  });

  it('when an API key is revoked, it is refused within the cache time', async () => {
    const { key, record } = await createApiKey(issuer.stores.apiKeys, { name: 'short-lived', resources: [ORDERS], scopes: ['orders:read'] });
    expect((await call('/orders', { 'x-api-key': key })).status).toBe(200);
    await issuer.stores.apiKeys.revoke(record.id);
    const revokedAt = Date.now();
    await eventually(async () => ((await call('/orders', { 'x-api-key': key })).status === 401 ? true : undefined), 10_000);
    // the service's positive cache is 500 ms here; the margin absorbs a loaded machine
    expect(Date.now() - revokedAt).toBeLessThan(5000);
  });

  it('when keys rotate while both run, old tokens keep working and new tokens carry the new kid', async () => {
    const old = await token(machine);
    expect((await call('/orders', bearer(old))).status).toBe(200);
    const { current } = await rotateKeys(new FileKeyStore(issuer.config.keysDir), { publishLead: issuer.config.keyPublishLead, force: true });
    const fresh = await eventually(async () => {
      const jwt = await token(machine);
      return decodeProtectedHeader(jwt).kid === current.jwk.kid ? jwt : undefined;
    });
    expect((await call('/orders', bearer(fresh))).status).toBe(200);
    expect((await call('/orders', bearer(old))).status).toBe(200);
  });

  it('when the issuer stops, the service keeps accepting valid tokens', async () => {
    const jwt = await token(machine);
    const unused = await token(reader);
    expect((await call('/orders', bearer(jwt))).status).toBe(200);
    await issuer.close();
    try {
      expect((await call('/orders', bearer(jwt))).status).toBe(200);
      expect((await call('/orders', bearer(unused))).status).toBe(200);
    } finally {
      issuer = await startTestIssuer(database);
    }
  });
});
