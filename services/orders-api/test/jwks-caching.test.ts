import { describe, expect, it } from '@jest/globals';
import { createAccessTokenVerifier } from '@sigil/guard';

import { createClient } from '../../issuer/src/domain/clients.js';
import { embedded } from '../../issuer/test/support/backends.js';
import { basicAuth } from '../../issuer/test/support/http.js';
import { issuerSuite, type TestIssuer } from '../../issuer/test/support/issuer.js';

const ORDERS = 'http://localhost:4001';

/** A token for orders-api from a client-credentials client of `issuer`. */
async function ordersToken(issuer: TestIssuer): Promise<string> {
  const { client, clientSecret } = await createClient(issuer.stores.clients, {
    name: `fulfilment-${Math.random()}`,
    grants: ['client_credentials'],
    scopes: ['orders:read'],
    resources: [ORDERS],
  });
  const response = await fetch(`${issuer.url}/token`, {
    method: 'POST',
    headers: { authorization: basicAuth(client.id, clientSecret ?? '') },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: ORDERS }),
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { access_token: string }).access_token;
}

/** A guard verifier for orders-api on `issuer`, with the guard's default JWKS caching. */
const ordersVerifier = (issuer: TestIssuer) => createAccessTokenVerifier({ issuer: issuer.issuer, audience: ORDERS, jwksUri: `${issuer.url}/jwks` });

describe("guard: JWKS freshness from a real issuer's Cache-Control", () => {
  describe('with the default KEY_PUBLISH_LEAD (3600 s)', () => {
    const suite = issuerSuite(embedded);

    it('when the JWKS is fetched, it answers public, max-age=900 and the guard keeps its 5-minute maxAgeMs', async () => {
      const response = await fetch(`${suite.issuer.url}/jwks`);
      expect(response.status).toBe(200);
      expect(response.headers.get('cache-control')).toBe('public, max-age=900');
      const verifier = ordersVerifier(suite.issuer);
      await expect(verifier.verify(await ordersToken(suite.issuer))).resolves.toMatchObject({ kind: 'client' });
      expect(verifier.keys.freshnessMs).toBe(5 * 60_000);
    });
  });

  describe('with KEY_PUBLISH_LEAD=41', () => {
    const suite = issuerSuite(embedded, { KEY_PUBLISH_LEAD: '41' });

    it('when the JWKS is fetched, it answers public, max-age=20 and the guard holds its keys fresh for 20 s', async () => {
      const response = await fetch(`${suite.issuer.url}/jwks`);
      expect(response.headers.get('cache-control')).toBe('public, max-age=20');
      const verifier = ordersVerifier(suite.issuer);
      await expect(verifier.verify(await ordersToken(suite.issuer))).resolves.toMatchObject({ kind: 'client' });
      expect(verifier.keys.freshnessMs).toBe(20_000);
      expect(verifier.keys.fetchCount).toBe(1);
    });
  });
});
