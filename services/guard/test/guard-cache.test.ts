import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import express from 'express';

import { createGuard, type Guard } from '../src/index.js';
import { accessToken, AUDIENCE, ISSUER, JwksServer, listen, signingKey, type SigningKey } from './support.js';

const INVALID = `Bearer realm="${AUDIENCE}", error="invalid_token", error_description="the access token or API key is invalid"`;

/**
 * The guard's synchronous path (a credential already in a cache) must answer exactly like the
 * full path: every request here is sent to a guard without the verified-token cache and twice
 * to one with it (the second time, at the latest, the token is cached), and the answers compared.
 */
describe('guard: requests whose token is already verified (cache hit path)', () => {
  const jwks = new JwksServer();
  let key: SigningKey;
  let clock = Date.now();
  let cached: Served;
  let uncached: Served;

  interface Served {
    url: string;
    guard: Guard;
    close(): Promise<void>;
  }

  async function served(verifiedCache: { maxEntries: number }): Promise<Served> {
    const guard = createGuard({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUri: jwks.url,
      now: () => clock,
      verifiedCache,
      // never reached: every API key below comes with a bearer token (400 before any lookup)
      apiKeys: { clientId: 'c', clientSecret: 's', introspectionEndpoint: `${jwks.url}?introspection` },
    });
    const app = express();
    app.get('/me', guard.requireAuth({ apiKeyInQuery: true }), (req, res) => {
      res.json(req.auth);
    });
    app.get('/orders', guard.requireAuth({ apiKeyInQuery: true }), guard.requireScope('orders:read'), (_req, res) => {
      res.json({ orders: [] });
    });
    app.get('/write', guard.requireScope('orders:write'), (_req, res) => {
      res.json({ ok: true });
    });
    return { guard, ...(await listen(app)) };
  }

  beforeAll(async () => {
    key = await signingKey('k1');
    jwks.keys = [key.publicJwk];
    await jwks.start();
    cached = await served({ maxEntries: 10_000 });
    uncached = await served({ maxEntries: 0 });
  });

  afterAll(async () => {
    await cached?.close();
    await uncached?.close();
    await jwks.stop();
  });

  const answer = async (base: string, path: string, headers: Record<string, string>) => {
    const response = await fetch(`${base}${path}`, { headers });
    return { status: response.status, challenge: response.headers.get('www-authenticate'), body: (await response.json()) as unknown };
  };

  /** The answer of the full path, checked to be the cached guard's answer, twice. */
  const same = async (path: string, headers: Record<string, string>) => {
    const full = await answer(uncached.url, path, headers);
    for (let i = 0; i < 2; i += 1) expect(await answer(cached.url, path, headers)).toEqual(full);
    return full;
  };

  it('a cached token passes and the route sees the same principal', async () => {
    const token = await accessToken(key, { scope: 'orders:read' });
    await cached.guard.verifier.verify(token);
    expect(cached.guard.verifier.cached(token)).toBeDefined();
    expect(await same('/me', { authorization: `Bearer ${token}` })).toMatchObject({ status: 200, body: { sub: 'user-1', scopes: ['orders:read'] } });
  });

  it.each([
    ['lower-case scheme, several spaces, trailing spaces', (t: string) => `bearer   ${t}  `, 200],
    ['upper-case scheme', (t: string) => `BEARER ${t}`, 200],
    ['no space after the scheme', (t: string) => `Bearer${t}`, 401],
    ['a tab instead of a space', (t: string) => `Bearer\t${t}`, 401],
    ['another scheme', (t: string) => `Token ${t}`, 401],
    ['two tokens', (t: string) => `Bearer ${t} ${t}`, 401],
    ['a comma after the token', (t: string) => `Bearer ${t},`, 401],
    ['base64 padding after the token', (t: string) => `Bearer ${t}==`, 401],
  ])('Authorization with %s answers as the full path does', async (_name, header, status) => {
    const token = await accessToken(key, { scope: 'orders:read' });
    await cached.guard.verifier.verify(token);
    const full = await same('/orders', { authorization: header(token) });
    expect(full.status).toBe(status);
    if (status === 401) expect(full.challenge).toMatch(/^Bearer realm=/u);
  });

  it('a cached token with one character changed is refused', async () => {
    const token = await accessToken(key);
    expect((await answer(cached.url, '/orders', { authorization: `Bearer ${token}` })).status).toBe(200);
    // not the last character: its low bits are padding that a lenient base64url decoder ignores
    for (const index of [token.length - 2, token.length - 40, 10]) {
      const other = `${token.slice(0, index)}${token[index] === 'A' ? 'B' : 'A'}${token.slice(index + 1)}`;
      expect(await same('/orders', { authorization: `Bearer ${other}` })).toEqual({
        status: 401,
        challenge: INVALID,
        body: { error: 'invalid_token', error_description: 'the access token or API key is invalid' },
      });
    }
  });

  it('a cached token sent with an API key (header or query) is still a bad request', async () => {
    const token = await accessToken(key);
    await cached.guard.verifier.verify(token);
    expect(await same('/orders', { authorization: `Bearer ${token}`, 'x-api-key': 'sgk_x' })).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    expect(await same('/orders?api_key=sgk_x', { authorization: `Bearer ${token}` })).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    // a query string without api_key changes nothing
    expect((await same('/orders?page=2', { authorization: `Bearer ${token}` })).status).toBe(200);
  });

  it('a cached token without the route scope is refused with insufficient_scope, every time', async () => {
    const token = await accessToken(key, { scope: 'orders:read' });
    await cached.guard.verifier.verify(token);
    expect(await same('/write', { authorization: `Bearer ${token}` })).toEqual({
      status: 403,
      challenge: `Bearer realm="${AUDIENCE}", error="insufficient_scope", error_description="requires scope orders:write", scope="orders:write"`,
      body: { error: 'insufficient_scope', error_description: 'requires scope orders:write' },
    });
  });

  it('a cached token stops passing once exp + tolerance has passed', async () => {
    const token = await accessToken(key, { exp: Math.floor(clock / 1000) + 60 });
    expect((await answer(cached.url, '/orders', { authorization: `Bearer ${token}` })).status).toBe(200);
    expect(cached.guard.verifier.cached(token)).toBeDefined();
    const saved = clock;
    clock += (60 + 30) * 1000;
    try {
      expect(await same('/orders', { authorization: `Bearer ${token}` })).toMatchObject({ status: 401, challenge: INVALID });
    } finally {
      clock = saved;
    }
  });
});
