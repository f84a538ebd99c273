import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';

import { createAccessTokenVerifier, InvalidToken } from '../src/index.js';
import { VerdictCache } from '../src/verified-cache.js';
import { accessToken, AUDIENCE, ISSUER, JwksServer, signingKey, type SigningKey } from './support.js';

/** `text` with the character at `index` replaced by a different one of the same alphabet. */
const changeAt = (text: string, index: number) => {
  const at = index < 0 ? text.length + index : index;
  return `${text.slice(0, at)}${text[at] === 'A' ? 'B' : 'A'}${text.slice(at + 1)}`;
};

describe('guard: the verified-token cache (VerdictCache)', () => {
  const credential = `${'h'.repeat(40)}.${'p'.repeat(300)}.${'s'.repeat(342)}`;

  it('serves an entry before its deadline and never at or after it', () => {
    const cache = new VerdictCache<string>(10);
    cache.set(credential, 'verdict', 1000, 0);
    expect(cache.get(credential, 0)).toBe('verdict');
    expect(cache.get(credential, 999)).toBe('verdict');
    expect(cache.get(credential, 1000)).toBeUndefined();
    // the expired entry is dropped once met
    expect(cache.size).toBe(0);
    expect(cache.get(credential, 500)).toBeUndefined();
  });

  it('stores nothing whose deadline is not after now', () => {
    const cache = new VerdictCache<string>(10);
    cache.set(credential, 'verdict', 1000, 1000);
    cache.set(credential, 'verdict', Number.NaN, 0);
    expect(cache.size).toBe(0);
    expect(cache.get(credential, 0)).toBeUndefined();
  });

  it.each([
    ['the first', 0],
    ['a middle', 400],
    ['the last', -1],
    ['the 33rd from the end (outside the index)', -33],
  ])('never serves a credential that differs in %s character', (_where, index) => {
    const cache = new VerdictCache<string>(10);
    cache.set(credential, 'verdict', 1000, 0);
    const other = changeAt(credential, index);
    expect(other).not.toBe(credential);
    expect(other).toHaveLength(credential.length);
    expect(cache.get(other, 0)).toBeUndefined();
    expect(cache.get(`${credential}s`, 0)).toBeUndefined();
    expect(cache.get(credential.slice(1), 0)).toBeUndefined();
    // …and the original is still served
    expect(cache.get(credential, 0)).toBe('verdict');
  });

  it('keeps at most maxEntries entries, evicting the oldest first', () => {
    const cache = new VerdictCache<number>(3);
    const credentials = Array.from({ length: 10 }, (_, i) => `${credential}${String(i).padStart(40, '0')}`);
    credentials.forEach((c, i) => {
      cache.set(c, i, 1000, 0);
      expect(cache.size).toBeLessThanOrEqual(3);
    });
    expect(credentials.map((c) => cache.get(c, 0))).toEqual([...Array.from({ length: 7 }, () => undefined), 7, 8, 9]);
  });

  it('holds one entry per index: another credential with the same tail replaces it, the bound still holds', () => {
    const cache = new VerdictCache<string>(2);
    const sameTail = changeAt(credential, 0);
    cache.set(credential, 'first', 1000, 0);
    cache.set(sameTail, 'second', 1000, 0);
    expect(cache.size).toBe(1);
    expect(cache.get(credential, 0)).toBeUndefined();
    expect(cache.get(sameTail, 0)).toBe('second');
  });

  it('when maxEntries is 0, stores nothing', () => {
    const cache = new VerdictCache<string>(0);
    cache.set(credential, 'verdict', 1000, 0);
    expect(cache.size).toBe(0);
    expect(cache.get(credential, 0)).toBeUndefined();
  });
});

describe('guard: access tokens served from the verified-token cache', () => {
  const jwks = new JwksServer();
  let key: SigningKey;
  let clock: number;
  const now = () => clock;
  const verifier = (verifiedCache?: { maxEntries?: number; maxAgeMs?: number }) =>
    createAccessTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, jwksUri: jwks.url, now, clockToleranceSeconds: 30, ...(verifiedCache === undefined ? {} : { verifiedCache }) });
  const token = (claims = {}) => accessToken(key, claims, {}, Math.floor(clock / 1000));

  beforeAll(async () => {
    key = await signingKey('k1');
    jwks.keys = [key.publicJwk];
    await jwks.start();
  });

  afterAll(async () => {
    await jwks.stop();
  });

  beforeEach(() => {
    clock = Date.parse('2026-11-29T10:00:00Z');
  });

  it('cached() answers only for a token verified before, and only while a fresh verification would accept it (exp + tolerance)', async () => {
    const v = verifier({ maxAgeMs: 3600_000 });
    const exp = Math.floor(clock / 1000) + 45;
    const t = await token({ exp });
    expect(v.cached(t)).toBeUndefined();
    const principal = await v.verify(t);
    expect(v.cached(t)).toBe(principal);
    clock = (exp + 30) * 1000 - 1;
    expect(v.cached(t)).toBe(principal);
    clock = (exp + 30) * 1000;
    expect(v.cached(t)).toBeUndefined();
    // and a fresh verification agrees
    await expect(v.verify(t)).rejects.toThrow(InvalidToken);
  });

  it('cached() forgets a verdict after maxAgeMs, even for a token that is still valid', async () => {
    const v = verifier({ maxAgeMs: 10_000 });
    const t = await token();
    await v.verify(t);
    clock += 9_999;
    expect(v.cached(t)).toBeDefined();
    clock += 1;
    expect(v.cached(t)).toBeUndefined();
  });

  it('never serves a token that differs from a verified one in one character: it is verified, and refused', async () => {
    const v = verifier();
    const t = await token();
    await v.verify(t);
    const [header = '', payload = '', signature = ''] = t.split('.');
    // not the last character: its low bits are padding that a lenient base64url decoder ignores
    const tampered = [changeAt(t, -2), changeAt(t, header.length + 1 + Math.floor(payload.length / 2)), changeAt(t, header.length + 1 + payload.length + 1 + 5), changeAt(t, 3)];
    for (const other of tampered) {
      expect(other).not.toBe(t);
      expect(v.cached(other)).toBeUndefined();
      await expect(v.verify(other)).rejects.toThrow(InvalidToken);
    }
    expect(signature.length).toBeGreaterThan(32);
    expect(v.cached(t)).toBeDefined();
  });

  it('keeps at most maxEntries verified tokens', async () => {
    const v = verifier({ maxEntries: 3 });
    const tokens = await Promise.all(Array.from({ length: 6 }, () => token()));
    for (const t of tokens) await v.verify(t);
    expect(tokens.map((t) => v.cached(t) !== undefined)).toEqual([false, false, false, true, true, true]);
  });

  it('when the cache is off, cached() never answers', async () => {
    const v = verifier({ maxEntries: 0 });
    const t = await token();
    await v.verify(t);
    expect(v.cached(t)).toBeUndefined();
  });

  it('refuses a token that is not a plain compact JWS (padding, whitespace), which a lenient base64url decoder would accept', async () => {
    const v = verifier();
    const t = await token();
    for (const variant of [`${t}==`, `${t.slice(0, -10)} ${t.slice(-10)}`, `${t.slice(0, -10)}\n${t.slice(-10)}`, `${t}.`]) {
      await expect(v.verify(variant)).rejects.toThrow(InvalidToken);
      expect(v.cached(variant)).toBeUndefined();
    }
    await expect(v.verify(t)).resolves.toMatchObject({ sub: 'user-1' });
  });

  it('hands out a frozen principal: one request cannot alter what the next one is served', async () => {
    const v = verifier();
    // a nested claim: act (RFC 8693 §4.1), the chain of an exchanged token
    const t = await token({ scope: 'orders:read', roles: ['viewer'], act: { sub: 'abc' } });
    const principal = await v.verify(t);
    expect(Object.isFrozen(principal)).toBe(true);
    expect(() => (principal.scopes as string[]).push('orders:write')).toThrow(TypeError);
    expect(() => (principal.roles as string[]).push('admin')).toThrow(TypeError);
    expect(() => {
      (principal.claims as Record<string, unknown>)['scope'] = 'orders:write';
    }).toThrow(TypeError);
    expect(() => {
      ((principal.claims as Record<string, Record<string, unknown>>)['act'] ?? {})['sub'] = 'other';
    }).toThrow(TypeError);
    expect(v.cached(t)).toMatchObject({ scopes: ['orders:read'], roles: ['viewer'], claims: { scope: 'orders:read', act: { sub: 'abc' } } });
  });
});
