import { beforeAll, describe, expect, it } from '@jest/globals';

import { createApiKey } from '../../src/domain/api-keys.js';
import { backends } from '../support/backends.js';
import { issuerSuite } from '../support/issuer.js';
import { postForm, registerClient, type Credentials } from '../support/oauth.js';

const ORDERS = 'http://localhost:4001';
const REPORTS = 'http://localhost:4002';

describe.each(backends)('introspection (RFC 7662) ($name)', (backend) => {
  const suite = issuerSuite(backend);
  let machine: Credentials;
  let ordersService: Credentials;
  let reportsService: Credentials;

  const introspect = async (client: Credentials, token: string) => {
    const response = await postForm(suite.issuer.url, { token }, client, { path: '/token/introspection' });
    expect(response.status).toBe(200);
    return (await response.json()) as Record<string, unknown>;
  };
  const client = (input: Parameters<typeof registerClient>[1]) => registerClient(suite.issuer.stores.clients, input);

  beforeAll(async () => {
    machine = await client({ name: 'machine', grants: ['client_credentials'], scopes: ['orders:read'], roles: ['admin'], resources: [ORDERS] });
    ordersService = await client({ name: 'orders-api', grants: ['client_credentials'], resources: [ORDERS] });
    reportsService = await client({ name: 'reports-api', grants: ['client_credentials'], resources: [REPORTS] });
  });

  it('when a resource service introspects an API key, answers active with its scopes and roles', async () => {
    const { key, record } = await createApiKey(suite.issuer.stores.apiKeys, { name: 'ci', owner: 'platform', scopes: ['orders:read'], roles: ['reader'] });
    expect(await introspect(ordersService, key)).toEqual({
      active: true,
      token_type: 'api_key',
      iss: suite.issuer.issuer,
      sub: record.id,
      api_key_id: record.id,
      name: 'ci',
      scope: 'orders:read',
      roles: ['reader'],
      iat: Math.floor(record.createdAt.getTime() / 1000),
    });
    const [used] = await suite.issuer.db('api_keys').where({ id: record.id }).select('last_used_at');
    expect(used?.last_used_at).not.toBeNull();
  });

  it('when an API key is revoked, expired, forged or unknown, answers active: false', async () => {
    const revoked = await createApiKey(suite.issuer.stores.apiKeys, { name: 'revoked' });
    await suite.issuer.stores.apiKeys.revoke(revoked.record.id);
    const expired = await createApiKey(suite.issuer.stores.apiKeys, { name: 'expired', expiresIn: 60 });
    await suite.issuer.db('api_keys').where({ id: expired.record.id }).update({ expires_at: new Date(Date.now() - 1000) });
    const live = await createApiKey(suite.issuer.stores.apiKeys, { name: 'live' });
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
    // another resource server learns nothing about a token that is not for it
    expect(await introspect(reportsService, jwt)).toEqual({ active: false });
    expect(await introspect(ordersService, `${jwt.slice(0, -2)}${jwt.endsWith('AA') ? 'BB' : 'AA'}`)).toEqual({ active: false });
  });

  it('when the caller does not authenticate, answers 401 invalid_client', async () => {
    const response = await postForm(suite.issuer.url, { token: 'sgk_x' }, { id: ordersService.id, secret: 'wrong' }, { path: '/token/introspection' });
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ error: 'invalid_client', error_description: 'client authentication failed' });
  });
});
