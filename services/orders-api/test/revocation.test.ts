import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { resourceServiceConfig, serve } from '@sigil/resource-kit';
import type { Guard } from '@sigil/guard';
import { pino } from 'pino';

import { createClient, setClientDisabled } from '../../issuer/src/domain/clients.js';
import { PasswordHasher } from '../../issuer/src/domain/passwords.js';
import { createUser, setUserDisabled } from '../../issuer/src/domain/users.js';
import { backends, type TestDatabase } from '../../issuer/test/support/backends.js';
import { basicAuth } from '../../issuer/test/support/http.js';
import { startTestIssuer, type TestIssuer } from '../../issuer/test/support/issuer.js';
import { createOrdersApp } from '../src/app.js';

const ORDERS = 'http://localhost:4001';
const POLL_MS = 500;
/** One poll interval, plus what one poll and one request may take on a loaded machine. */
const REFUSED_WITHIN_MS = POLL_MS + 1500;

interface Credentials {
  id: string;
  secret: string;
}

describe.each(backends)('orders-api refuses revoked tokens within one poll of the revocation feed ($name)', (backend) => {
  let database: TestDatabase;
  let issuer: TestIssuer;
  let service: { url: string; close(): Promise<void> };
  let guard: Guard;
  let machine: Credentials;
  let app: Credentials;

  const post = (form: Record<string, string>, client: Credentials, path = '/token') =>
    fetch(`${issuer.url}${path}`, { method: 'POST', headers: { authorization: basicAuth(client.id, client.secret) }, body: new URLSearchParams(form) });
  const tokenOf = async (response: Response) => {
    expect(response.status).toBe(200);
    return ((await response.json()) as { access_token: string }).access_token;
  };
  const orders = (jwt: string) => fetch(`${service.url}/orders`, { headers: { authorization: `Bearer ${jwt}` } });
  const created = async (input: Parameters<typeof createClient>[1]) => {
    const { client, clientSecret } = await createClient(issuer.stores.clients, input);
    return { id: client.id, secret: clientSecret ?? '' };
  };
  /** Milliseconds from now until orders-api answers 401 invalid_token to `jwt` (or the bound runs out). */
  const untilRefused = async (jwt: string): Promise<number> => {
    const start = Date.now();
    for (;;) {
      const response = await orders(jwt);
      if (response.status === 401) {
        expect(response.headers.get('www-authenticate')).toContain('error="invalid_token"');
        return Date.now() - start;
      }
      expect(response.status).toBe(200);
      if (Date.now() - start > REFUSED_WITHIN_MS * 3) return Number.POSITIVE_INFINITY;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  beforeAll(async () => {
    database = await backend.create();
    issuer = await startTestIssuer(database);
    machine = await created({ name: 'fulfilment', grants: ['client_credentials'], scopes: ['orders:read'], resources: [ORDERS] });
    app = await created({ name: 'shop', grants: ['password', 'refresh_token'], scopes: ['orders:read'], resources: [ORDERS] });
    // a resource service's own client: no grant (it only introspects and reads the feed), and the scopes of its audience
    const guardClient = await created({ name: 'orders-api', grants: [], scopes: ['orders:read', 'orders:write'], resources: [ORDERS] });
    await createUser(issuer.stores.users, { username: 'vera', password: 'correct horse battery' }, new PasswordHasher({ memoryKib: 19_456, timeCost: 2, parallelism: 1 }));
    const config = resourceServiceConfig(
      { ISSUER: issuer.issuer, AUDIENCE: ORDERS, GUARD_CLIENT_ID: guardClient.id, GUARD_CLIENT_SECRET: guardClient.secret, REVOCATION_POLL_INTERVAL_MS: String(POLL_MS) },
      { port: 0, audience: ORDERS },
    );
    const built = createOrdersApp({ config, logger: pino({ level: 'silent' }) });
    guard = built.guard;
    service = await serve(built.app, 0);
  });

  afterAll(async () => {
    guard?.close();
    await service?.close();
    await issuer?.close();
    await database?.drop();
  });

  it('when a token the guard has verified and cached is revoked, it is refused within one poll; another token keeps working', async () => {
    const revoked = await tokenOf(await post({ grant_type: 'client_credentials' }, machine));
    const kept = await tokenOf(await post({ grant_type: 'client_credentials' }, machine));
    expect((await orders(revoked)).status).toBe(200);
    expect((await orders(kept)).status).toBe(200);
    expect(guard.verifier.cached(revoked)).toBeDefined();

    expect((await post({ token: revoked }, machine, '/token/revocation')).status).toBe(200);
    expect(await untilRefused(revoked)).toBeLessThanOrEqual(REFUSED_WITHIN_MS);
    expect((await orders(kept)).status).toBe(200);
  });

  it('when a token never seen before was revoked, its first use after the next poll is refused', async () => {
    const revoked = await tokenOf(await post({ grant_type: 'client_credentials' }, machine));
    expect((await post({ token: revoked }, machine, '/token/revocation')).status).toBe(200);
    const polls = guard.revocations?.pollCount ?? 0;
    // wait for a poll that started after the revocation
    const deadline = Date.now() + REFUSED_WITHIN_MS;
    while ((guard.revocations?.pollCount ?? 0) < polls + 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
    const response = await orders(revoked);
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });

  it('when a client is disabled, its client credentials token the guard has cached is refused within one poll; enabled again, the old token stays refused and a new one is accepted', async () => {
    const leaky = await created({ name: 'leaky', grants: ['client_credentials'], scopes: ['orders:read'], resources: [ORDERS] });
    const old = await tokenOf(await post({ grant_type: 'client_credentials' }, leaky));
    const kept = await tokenOf(await post({ grant_type: 'client_credentials' }, machine));
    expect((await orders(old)).status).toBe(200);
    expect(guard.verifier.cached(old)).toBeDefined();

    await setClientDisabled(issuer.stores.clients, leaky.id, true);
    expect(await untilRefused(old)).toBeLessThanOrEqual(REFUSED_WITHIN_MS);
    expect((await orders(kept)).status).toBe(200);

    await setClientDisabled(issuer.stores.clients, leaky.id, false);
    // a token issued once the whole second of the revocation's moment (a little after the disabling) has passed
    const recorded = await issuer.db('revocations').where({ kind: 'client', value: leaky.id }).first<{ revoked_at: Date } | undefined>('revoked_at');
    const nextSecond = (Math.floor(new Date(recorded?.revoked_at ?? 0).getTime() / 1000) + 1) * 1000;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, nextSecond - Date.now()) + 20));
    const fresh = await tokenOf(await post({ grant_type: 'client_credentials' }, leaky));
    expect((await orders(fresh)).status).toBe(200);
    const refused = await orders(old);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });

  it("when a user is disabled, every access token of the user's grants is refused within one poll", async () => {
    const jwt = await tokenOf(await post({ grant_type: 'password', username: 'vera', password: 'correct horse battery' }, app));
    expect((await orders(jwt)).status).toBe(200);
    await setUserDisabled(issuer.stores.users, 'vera', true);
    expect(await untilRefused(jwt)).toBeLessThanOrEqual(REFUSED_WITHIN_MS);
  });
});
