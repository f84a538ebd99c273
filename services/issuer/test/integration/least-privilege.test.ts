import { beforeAll, describe, expect, it } from '@jest/globals';

import { PasswordHasher } from '../../src/domain/passwords.js';
import { createUser } from '../../src/domain/users.js';
import { backends } from '../support/backends.js';
import { eventually } from '../support/http.js';
import { issuerSuite } from '../support/issuer.js';
import { claimsOf, postForm, registerClient, type Credentials } from '../support/oauth.js';

const ORDERS = 'http://localhost:4001';
const REPORTS = 'http://localhost:4002';
const INVENTORY = 'http://localhost:4003';
const PASSWORD = 'correct horse battery staple';

interface TokenResponse {
  access_token: string;
  refresh_token?: string;
  expires_in: number;
  scope?: string;
}

describe.each(backends)('least-privilege scopes, resource-service clients, per-client lifetimes ($name)', (backend) => {
  const suite = issuerSuite(backend);
  let machine: Credentials;
  let app: Credentials;
  let ordersService: Credentials;
  let shortLived: Credentials;
  let noResource: Credentials;

  const client = (input: Parameters<typeof registerClient>[1]) => registerClient(suite.issuer.stores.clients, input);
  const token = async (form: Record<string, string>, credentials: Credentials) => {
    const response = await postForm(suite.issuer.url, form, credentials);
    return { status: response.status, body: (await response.json()) as TokenResponse & Record<string, unknown> };
  };
  const tokenScope = (body: TokenResponse) => claimsOf(body.access_token)['scope'];

  beforeAll(async () => {
    // the resource services' own clients (no grant) declare the scopes of their audience
    ordersService = await client({ name: 'orders-api', resources: [ORDERS], scopes: ['orders:read', 'orders:write'] });
    await client({ name: 'reports-api', resources: [REPORTS], scopes: ['reports:read'] });
    const scopes = ['openid', 'profile', 'email', 'offline_access', 'orders:read', 'orders:write', 'reports:read', 'stock:read'];
    machine = await client({ name: 'machine', grants: ['client_credentials'], scopes, resources: [ORDERS, REPORTS, INVENTORY] });
    app = await client({ name: 'app', grants: ['password', 'refresh_token'], scopes, resources: [ORDERS, REPORTS] });
    shortLived = await client({ name: 'short', grants: ['client_credentials', 'password'], scopes: ['orders:read'], resources: [ORDERS], accessTokenTtl: 120 });
    noResource = await client({ name: 'lost', grants: ['client_credentials'], scopes: ['orders:read'] });
    await createUser(suite.issuer.stores.users, { username: 'dana', password: PASSWORD, roles: ['admin'] }, new PasswordHasher());
  });

  it('when a client-credentials token asks for no scope, it carries only its audience\'s scopes, never an OpenID scope (S6)', async () => {
    const orders = await token({ grant_type: 'client_credentials' }, machine);
    expect(orders.status).toBe(200);
    expect(orders.body.scope).toBe('orders:read orders:write');
    expect(tokenScope(orders.body)).toBe('orders:read orders:write');
    const reports = await token({ grant_type: 'client_credentials', resource: REPORTS }, machine);
    expect(tokenScope(reports.body)).toBe('reports:read');
    // nobody declares inventory's scopes: the client's scopes that no other resource declares
    const inventory = await token({ grant_type: 'client_credentials', resource: INVENTORY }, machine);
    expect(tokenScope(inventory.body)).toBe('stock:read');
  });

  it('when a client-credentials token asks for scopes of several audiences, it carries the requested ones of its own audience only (S6)', async () => {
    const { status, body } = await token({ grant_type: 'client_credentials', scope: 'openid orders:read reports:read' }, machine);
    expect(status).toBe(200);
    expect(body.scope).toBe('orders:read');
    expect(claimsOf(body.access_token)).toMatchObject({ aud: ORDERS, scope: 'orders:read' });
  });

  it('when a password-grant token is issued and refreshed, it carries neither OpenID scopes nor another audience\'s (S6)', async () => {
    const issued = await token({ grant_type: 'password', username: 'dana', password: PASSWORD }, app);
    expect(issued.status).toBe(200);
    expect(issued.body.scope).toBe('orders:read orders:write');
    expect(tokenScope(issued.body)).toBe('orders:read orders:write');

    const asked = await token({ grant_type: 'password', username: 'dana', password: PASSWORD, scope: 'openid profile orders:read reports:read' }, app);
    expect(asked.body.scope).toBe('orders:read');
    expect(tokenScope(asked.body)).toBe('orders:read');

    const refreshed = await token({ grant_type: 'refresh_token', refresh_token: asked.body.refresh_token ?? '' }, app);
    expect(refreshed.status).toBe(200);
    expect(tokenScope(refreshed.body)).toBe('orders:read');

    const reports = await token({ grant_type: 'password', username: 'dana', password: PASSWORD, resource: REPORTS }, app);
    expect(tokenScope(reports.body)).toBe('reports:read');
  });

  it('when a scope outside the client\'s registration is asked for, the answer is still invalid_scope', async () => {
    const { status, body } = await token({ grant_type: 'client_credentials', scope: 'orders:delete' }, machine);
    expect(status).toBe(400);
    expect(body).toMatchObject({ error: 'invalid_scope', scope: 'orders:delete' });
  });

  it('when a resource service\'s own client (no grant) introspects a token for its audience, it may; it gets no token itself', async () => {
    const issued = await token({ grant_type: 'client_credentials' }, machine);
    const introspection = await postForm(suite.issuer.url, { token: issued.body.access_token }, ordersService, { path: '/token/introspection' });
    expect(introspection.status).toBe(200);
    expect(await introspection.json()).toMatchObject({ active: true, aud: ORDERS, scope: 'orders:read orders:write' });

    const refused = await token({ grant_type: 'client_credentials' }, ordersService);
    expect(refused.status).toBe(400);
    expect(refused.body).toEqual({ error: 'unauthorized_client', error_description: expect.any(String) });
  });

  it('when a client has no registered resource, its token request answers invalid_target saying so', async () => {
    const { status, body } = await token({ grant_type: 'client_credentials' }, noResource);
    expect(status).toBe(400);
    expect(body).toEqual({
      error: 'invalid_target',
      error_description: 'this client has no registered resource (audience) to issue an access token for; register one with --resource',
    });
  });

  it('when a client has its own access-token lifetime, every grant\'s token lives exactly that long; others get ACCESS_TOKEN_TTL', async () => {
    const forms: Record<string, string>[] = [{ grant_type: 'client_credentials' }, { grant_type: 'password', username: 'dana', password: PASSWORD }];
    for (const form of forms) {
      const { status, body } = await token(form, shortLived);
      expect(status).toBe(200);
      expect(body.expires_in).toBe(120);
      const claims = claimsOf(body.access_token) as { iat: number; exp: number };
      expect(claims.exp - claims.iat).toBe(120);
    }
    const { body } = await token({ grant_type: 'client_credentials' }, machine);
    const claims = claimsOf(body.access_token) as { iat: number; exp: number };
    expect(claims.exp - claims.iat).toBe(900);
  });

  it('when a resource service\'s client declares more scopes, the next tokens for that audience follow (no restart)', async () => {
    await client({ name: 'inventory-api', resources: [INVENTORY], scopes: ['stock:read', 'stock:write'] });
    await client({ name: 'reports-api, second replica', resources: [REPORTS], scopes: ['stock:read'] });
    const reportsScope = await eventually(async () => {
      const { body } = await token({ grant_type: 'client_credentials', resource: REPORTS }, machine);
      return tokenScope(body) === 'reports:read stock:read' ? tokenScope(body) : undefined;
    });
    expect(reportsScope).toBe('reports:read stock:read');
    const { body } = await token({ grant_type: 'client_credentials', resource: INVENTORY }, machine);
    expect(tokenScope(body)).toBe('stock:read');
  });
});
