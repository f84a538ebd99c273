import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';

import express from 'express';

import { createGuard, type GuardOptions } from '../src/index.js';
import { AUDIENCE, guardedApp, IntrospectionServer, ISSUER, listen, newApiKey } from './support.js';

const POSITIVE_TTL_MS = 10_000;
const NEGATIVE_TTL_MS = 2_000;
const ACTIVE = { active: true, token_type: 'api_key', sub: 'key-1', scope: 'orders:read', roles: [] };

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

  it('when the issuer vouched for a key, keeps that answer for positiveTtlMs, then asks again', async () => {
    const key = newApiKey();
    introspection.answers.set(key, ACTIVE);
    expect(await status(key)).toBe(200);
    expect(introspection.requests).toBe(1);
    // revoked at the issuer: the service goes on trusting its answer until positiveTtlMs
    introspection.answers.delete(key);
    clock += POSITIVE_TTL_MS - 1;
    expect(await status(key)).toBe(200);
    expect(introspection.requests).toBe(1);
    clock += 1;
    expect(await status(key)).toBe(401);
    expect(introspection.requests).toBe(2);
  });

  it('when the issuer refused a key, keeps the refusal for negativeTtlMs, then asks again', async () => {
    const key = newApiKey();
    expect(await status(key)).toBe(401);
    expect(introspection.requests).toBe(1);
    // the issuer now knows the key: the service keeps refusing it until negativeTtlMs
    introspection.answers.set(key, ACTIVE);
    clock += NEGATIVE_TTL_MS - 1;
    expect(await status(key)).toBe(401);
    expect(introspection.requests).toBe(1);
    clock += 1;
    expect(await status(key)).toBe(200);
    expect(introspection.requests).toBe(2);
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
