import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';

import express from 'express';

import { createGuard, type GuardOptions } from '../src/index.js';
import { AUDIENCE, guardedApp, IntrospectionServer, ISSUER, listen, newApiKey } from './support.js';

const POSITIVE_TTL_MS = 10_000;
const NEGATIVE_TTL_MS = 2_000;
const ACTIVE = { active: true, token_type: 'api_key', sub: 'key-1', aud: [AUDIENCE], scope: 'orders:read', roles: [] };

/**
 * The guard's API-key cache, over HTTP on loopback: requests with `X-API-Key` go to a guarded
 * service, which asks a local introspection endpoint; the clock is the test's, so the cache
 * times are crossed without waiting.
 */
describe('guard: the API-key cache', () => {
  const introspection = new IntrospectionServer();
  let clock: number;
  let service: Awaited<ReturnType<typeof guardedApp>>;

  const options = (): GuardOptions => ({
    issuer: ISSUER,
    audience: AUDIENCE,
    now: () => clock,
    apiKeys: {
      clientId: 'orders-api',
      clientSecret: 'secret',
      introspectionEndpoint: introspection.url,
      positiveTtlMs: POSITIVE_TTL_MS,
      negativeTtlMs: NEGATIVE_TTL_MS,
    },
  });
  const status = async (apiKey: string, base = service.url) => (await fetch(`${base}/orders`, { headers: { 'x-api-key': apiKey } })).status;

  beforeAll(async () => {
    await introspection.start();
  });

  afterAll(async () => {
    await introspection.stop();
  });

  beforeEach(async () => {
    clock = Date.parse('2026-11-29T10:00:00Z');
    introspection.requests = 0;
    introspection.answers.clear();
    service = await guardedApp(options());
  });

  afterEach(async () => {
    await service.close();
  });

  // the issuer's answer changes right after the first request: the service keeps its own until the cache time is over
  it.each([
    ['vouched for a key, keeps that answer for positiveTtlMs (a revocation waits)', true, POSITIVE_TTL_MS],
    ['refused a key, keeps the refusal for negativeTtlMs (a new key waits)', false, NEGATIVE_TTL_MS],
  ])('when the issuer %s, then asks again', async (_name, active, ttlMs) => {
    const key = newApiKey();
    const [first, later] = active ? [200, 401] : [401, 200];
    if (active) introspection.answers.set(key, ACTIVE);
    expect(await status(key)).toBe(first);
    expect(introspection.requests).toBe(1);
    if (active) introspection.answers.delete(key);
    else introspection.answers.set(key, ACTIVE);
    clock += ttlMs - 1;
    expect(await status(key)).toBe(first);
    expect(introspection.requests).toBe(1);
    clock += 1;
    expect(await status(key)).toBe(later);
    expect(introspection.requests).toBe(2);
  });

  it.each([
    ['names other services', { ...ACTIVE, aud: ['https://reports.test'] }],
    ['names one other service as a string', { ...ACTIVE, aud: 'https://reports.test' }],
    ['names no service (a key from before keys had resources)', { ...ACTIVE, aud: [] }],
    ['has no aud at all', { active: true, token_type: 'api_key', sub: 'key-1', scope: 'orders:read', roles: [] }],
  ])('when the issuer says active for a key that %s, answers 401 invalid_token (the key is not for this service) (R9)', async (_name, answer) => {
    const key = newApiKey();
    introspection.answers.set(key, answer);
    const response = await fetch(`${service.url}/orders`, { headers: { 'x-api-key': key } });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe(
      `Bearer realm="${AUDIENCE}", error="invalid_token", error_description="the access token or API key is invalid"`,
    );
    // the refusal is cached like any other: the next request does not ask again
    expect(await status(key)).toBe(401);
    expect(introspection.requests).toBe(1);
  });

  it('when many requests bring one uncached key at once, they share one introspection request', async () => {
    const key = newApiKey();
    introspection.answers.set(key, ACTIVE);
    const guard = createGuard(options());
    let arrived = 0;
    const app = express();
    app.use((_req, _res, next) => {
      arrived += 1;
      next();
    });
    app.get('/orders', guard.requireScope('orders:read'), (_req, res) => {
      res.json({ orders: [] });
    });
    const counted = await listen(app);
    try {
      const release = introspection.hold();
      const statuses = Promise.all(Array.from({ length: 20 }, () => status(key, counted.url)));
      // every request has reached the guard (and joined the one in flight) before the answer comes
      while (arrived < 20 || introspection.requests < 1) await new Promise((resolve) => setTimeout(resolve, 5));
      expect(introspection.requests).toBe(1);
      release();
      expect(await statuses).toEqual(Array.from({ length: 20 }, () => 200));
      expect(introspection.requests).toBe(1);
      // …and the answer is then served from the cache
      expect(await status(key, counted.url)).toBe(200);
      expect(introspection.requests).toBe(1);
    } finally {
      await counted.close();
    }
  });

  it('when concurrent resolutions of one uncached key are asked directly, they share one introspection request', async () => {
    const key = newApiKey();
    introspection.answers.set(key, ACTIVE);
    const guard = createGuard(options());
    const principals = await Promise.all(Array.from({ length: 20 }, () => guard.authenticate({ apiKey: key })));
    expect(introspection.requests).toBe(1);
    expect(new Set(principals).size).toBe(1);
    expect(principals[0]).toMatchObject({ kind: 'api_key', sub: 'key-1', scopes: ['orders:read'] });
  });
});
