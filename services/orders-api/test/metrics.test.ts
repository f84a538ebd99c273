import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { resourceServiceConfig, serve } from '@sigil/resource-kit';
import { pino } from 'pino';

import { createClient } from '../../issuer/src/domain/clients.js';
import { embedded } from '../../issuer/test/support/backends.js';
import { basicAuth, eventually } from '../../issuer/test/support/http.js';
import { issuerSuite } from '../../issuer/test/support/issuer.js';
import { createOrdersApp } from '../src/app.js';

const ORDERS = 'http://localhost:4001';

/** The value of one sample of a Prometheus text exposition (`name{labels}`), undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('orders-api GET /metrics: the guard counters behind a real issuer', () => {
  const suite = issuerSuite(embedded);
  let service: { url: string; close(): Promise<void> };
  let machine: { id: string; secret: string };
  let reader: { id: string; secret: string };

  const token = async (client: { id: string; secret: string }) => {
    const response = await fetch(`${suite.issuer.url}/token`, {
      method: 'POST',
      headers: { authorization: basicAuth(client.id, client.secret) },
      body: new URLSearchParams({ grant_type: 'client_credentials' }),
    });
    expect(response.status).toBe(200);
    return ((await response.json()) as { access_token: string }).access_token;
  };
  const metrics = async () => {
    const response = await fetch(`${service.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/u);
    return response.text();
  };

  beforeAll(async () => {
    const { issuer } = suite;
    const created = async (input: Parameters<typeof createClient>[1]) => {
      const { client, clientSecret } = await createClient(issuer.stores.clients, input);
      return { id: client.id, secret: clientSecret ?? '' };
    };
    machine = await created({ name: 'fulfilment', grants: ['client_credentials'], scopes: ['orders:read', 'orders:write'], resources: [ORDERS] });
    reader = await created({ name: 'dashboard', grants: ['client_credentials'], scopes: ['orders:read'], resources: [ORDERS] });
    const guardClient = await created({ name: 'orders-api', grants: ['client_credentials'], resources: [ORDERS] });
    const config = resourceServiceConfig(
      { ISSUER: issuer.issuer, AUDIENCE: ORDERS, GUARD_CLIENT_ID: guardClient.id, GUARD_CLIENT_SECRET: guardClient.secret },
      { port: 0, audience: ORDERS },
    );
    service = await serve(createOrdersApp({ config, logger: pino({ level: 'silent' }) }).app, 0);
  });

  afterAll(async () => {
    await service?.close();
  });

  it('counts accepted and refused requests by reason, cache hits and misses, JWKS and revocation-feed fetches, beside the process metrics', async () => {
    const before = await metrics();
    expect(sample(before, 'sigil_guard_requests_total{outcome="accepted"}')).toBe(0);
    expect(sample(before, 'sigil_process_cpu_user_seconds_total')).toEqual(expect.any(Number));

    const jwt = await token(machine);
    for (let i = 0; i < 3; i += 1) expect((await fetch(`${service.url}/orders`, { headers: { authorization: `Bearer ${jwt}` } })).status).toBe(200);
    expect((await fetch(`${service.url}/orders`)).status).toBe(401);
    expect((await fetch(`${service.url}/orders`, { headers: { authorization: 'Bearer abc.def.ghi' } })).status).toBe(401);
    const write = await fetch(`${service.url}/orders`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await token(reader)}`, 'content-type': 'application/json' },
      body: JSON.stringify({ item: 'widget', quantity: 1 }),
    });
    expect(write.status).toBe(403);

    // the revocation feed is polled from the start, in the background
    const text = await eventually(async () => {
      const current = await metrics();
      return (sample(current, 'sigil_guard_revocation_feed_polls_total{outcome="succeeded"}') ?? 0) >= 1 ? current : undefined;
    });
    // three with the machine's token, and the reader's, whose credential was accepted before its scope was refused
    expect(sample(text, 'sigil_guard_requests_total{outcome="accepted"}')).toBe(4);
    expect(sample(text, 'sigil_guard_requests_total{outcome="refused",reason="ERR_CREDENTIALS_MISSING"}')).toBe(1);
    expect(sample(text, 'sigil_guard_requests_total{outcome="refused",reason="ERR_INVALID_TOKEN"}')).toBe(1);
    expect(sample(text, 'sigil_guard_requests_total{outcome="refused",reason="ERR_INSUFFICIENT_SCOPE"}')).toBe(1);
    // the machine's token verified once then served from the cache twice; the bad one and the reader's verified once each
    expect(sample(text, 'sigil_guard_verified_token_cache_total{result="hit"}')).toBe(2);
    expect(sample(text, 'sigil_guard_verified_token_cache_total{result="miss"}')).toBe(3);
    expect(sample(text, 'sigil_guard_jwks_fetches_total{outcome="succeeded"}')).toBe(1);
    expect(sample(text, 'sigil_guard_jwks_fetches_total{outcome="failed"}')).toBe(0);
    expect(sample(text, 'sigil_guard_revocation_feed_polls_total{outcome="failed"}')).toBe(0);
    // counters only: no token or client id in the exposition
    expect(text).not.toContain(jwt);
    expect(text).not.toContain(machine.id);
  });
});
