import { beforeAll, describe, expect, it } from '@jest/globals';

import { PasswordHasher } from '../../src/domain/passwords.js';
import { createUser, setUserDisabled } from '../../src/domain/users.js';
import { backends } from '../support/backends.js';
import { basicAuth } from '../support/http.js';
import { issuerSuite } from '../support/issuer.js';
import { claimsOf, postForm, registerClient, type Credentials } from '../support/oauth.js';

const ORDERS = 'http://localhost:4001';
const REPORTS = 'http://localhost:4002';
const BULK = 'http://localhost:4003';

interface Feed {
  revocations: ({ jti: string; expires_at: number } | { grant_id: string; expires_at: number })[];
  next_cursor: string;
  has_more: boolean;
}

describe.each(backends)('the revocation feed ($name)', (backend) => {
  const suite = issuerSuite(backend);
  let ordersMachine: Credentials;
  let reportsMachine: Credentials;
  let ordersService: Credentials;
  let reportsService: Credentials;
  let bulkService: Credentials;
  let app: Credentials;
  let browserApp: Credentials;

  beforeAll(async () => {
    const { clients, users } = suite.issuer.stores;
    const client = (input: Parameters<typeof registerClient>[1]) => registerClient(clients, input);
    ordersMachine = await client({ name: 'orders-machine', grants: ['client_credentials'], scopes: ['orders:read'], resources: [ORDERS] });
    reportsMachine = await client({ name: 'reports-machine', grants: ['client_credentials'], scopes: ['reports:read'], resources: [REPORTS] });
    ordersService = await client({ name: 'orders-api', grants: ['client_credentials'], resources: [ORDERS] });
    reportsService = await client({ name: 'reports-api', grants: ['client_credentials'], resources: [REPORTS] });
    bulkService = await client({ name: 'bulk-api', grants: ['client_credentials'], resources: [BULK] });
    app = await client({ name: 'app', grants: ['password', 'refresh_token'], scopes: ['orders:read'], resources: [ORDERS] });
    browserApp = await client({ name: 'spa', grants: ['authorization_code'], redirectUris: ['http://127.0.0.1:9/cb'], resources: [ORDERS], public: true });
    await createUser(users, { username: 'fay', password: 'correct horse battery' }, new PasswordHasher({ memoryKib: 19_456, timeCost: 2, parallelism: 1 }));
  });

  const feed = (headers: Record<string, string>, since?: string) =>
    fetch(`${suite.issuer.url}/token/revocations${since === undefined ? '' : `?since=${encodeURIComponent(since)}`}`, { headers });
  const read = async (client: Credentials, since?: string): Promise<Feed> => {
    const response = await feed({ authorization: basicAuth(client.id, client.secret) }, since);
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    return (await response.json()) as Feed;
  };
  /** A fresh client-credentials token of `client`, revoked by it; answers its jti and exp. */
  const revokedToken = async (client: Credentials): Promise<{ jti: string; exp: number }> => {
    const { access_token: token } = (await (await postForm(suite.issuer.url, { grant_type: 'client_credentials' }, client)).json()) as { access_token: string };
    expect((await postForm(suite.issuer.url, { token }, client, { path: '/token/revocation' })).status).toBe(200);
    return claimsOf(token) as { jti: string; exp: number };
  };

  it('when the caller does not authenticate as a confidential client, answers 401 invalid_client with a Basic challenge', async () => {
    const attempts: Record<string, string>[] = [
      {},
      { authorization: basicAuth(ordersService.id, 'wrong') },
      { authorization: basicAuth('no-such-client', ordersService.secret) },
      { authorization: basicAuth(browserApp.id, 'anything') },
      { authorization: `Basic ${Buffer.from(`${browserApp.id}:`).toString('base64')}` },
      { authorization: 'Basic %%%' },
      { authorization: `Bearer ${ordersService.secret}` },
    ];
    for (const headers of attempts) {
      const response = await feed(headers);
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toMatch(/^Basic realm="/u);
      expect(await response.json()).toEqual({ error: 'invalid_client', error_description: 'client authentication failed' });
    }
  });

  it('when a cursor is not one the feed answered, answers 400 invalid_request', async () => {
    for (const since of ['x', '1-', '-1', '1-2-3', `${'9'.repeat(21)}-1`, '1-99999999999999999999']) {
      const response = await feed({ authorization: basicAuth(ordersService.id, ordersService.secret) }, since);
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: string }).error).toBe('invalid_request');
    }
  });

  it('lists to each resource service only revocations of tokens for its own audiences, jtis and grants, until they expire', async () => {
    const ordersToken = await revokedToken(ordersMachine);
    const reportsToken = await revokedToken(reportsMachine);
    const signedIn = await postForm(suite.issuer.url, { grant_type: 'password', username: 'fay', password: 'correct horse battery' }, app);
    const grantId = claimsOf(((await signedIn.json()) as { access_token: string }).access_token)['grant_id'] as string;
    await setUserDisabled(suite.issuer.stores.users, 'fay', true);
    // already expired: never listed
    await suite.issuer.stores.revocations.record({ kind: 'jti', value: 'expired-jti', audiences: [ORDERS], expiresAt: new Date(Date.now() - 1000) });

    const orders = (await read(ordersService)).revocations;
    expect(orders).toEqual([
      { jti: ordersToken.jti, expires_at: ordersToken.exp },
      { grant_id: grantId, expires_at: expect.any(Number) },
    ]);
    const reports = (await read(reportsService)).revocations;
    expect(reports).toEqual([{ jti: reportsToken.jti, expires_at: reportsToken.exp }]);
  });

  it('when the next cursor is sent, lists only what was revoked since, page by page', async () => {
    const start = await read(bulkService);
    expect(start.revocations).toEqual([]);
    const expiresAt = new Date(Date.now() + 3600_000);
    await suite.issuer.db('revocations').insert(Array.from({ length: 1001 }, (_, i) => ({ kind: 'jti', value: `bulk-${i}`, audiences: [BULK], expires_at: expiresAt })));

    const first = await read(bulkService, start.next_cursor);
    expect(first.revocations).toHaveLength(1000);
    expect(first.has_more).toBe(true);
    const second = await read(bulkService, first.next_cursor);
    expect(second.revocations.map((entry) => ('jti' in entry ? entry.jti : entry.grant_id))).toEqual(['bulk-1000']);
    expect(second.has_more).toBe(false);
    // nothing new: the same cursor back, and nothing listed
    const third = await read(bulkService, second.next_cursor);
    expect(third).toEqual({ revocations: [], next_cursor: second.next_cursor, has_more: false });
    const seen = new Set([...first.revocations, ...second.revocations].map((entry) => ('jti' in entry ? entry.jti : entry.grant_id)));
    expect(seen.size).toBe(1001);
  });
});
