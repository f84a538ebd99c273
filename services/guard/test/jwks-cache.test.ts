import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';

import { createAccessTokenVerifier, InvalidToken, VerifierUnavailable, type AccessTokenVerifier } from '../src/index.js';
import { cacheControlMaxAge } from '../src/jwks-cache.js';
import { accessToken, AUDIENCE, ISSUER, JwksServer, signingKey, type SigningKey } from './support.js';

describe('guard: JWKS cache (R7)', () => {
  let jwks: JwksServer;
  let key: SigningKey;
  let clock: number;
  const now = () => clock;
  const verifier = () =>
    createAccessTokenVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUri: jwks.url,
      now,
      jwks: { maxAgeMs: 5 * 60_000, staleIfErrorMs: 3600_000, cooldownMs: 30_000 },
      verifiedCache: { maxEntries: 0 },
    });
  const token = (signer: SigningKey, claims = {}) => accessToken(signer, claims, {}, Math.floor(clock / 1000));

  beforeEach(async () => {
    clock = Date.parse('2026-11-29T10:00:00Z');
    key = await signingKey('k1');
    jwks = new JwksServer();
    jwks.keys = [key.publicJwk];
    await jwks.start();
  });

  afterEach(async () => {
    await jwks.stop();
  });

  it('when many tokens are verified, fetches the JWKS once', async () => {
    const v = verifier();
    for (let i = 0; i < 20; i += 1) await v.verify(await token(key));
    expect(jwks.requests).toBe(1);
  });

  it('when a flood of unknown kids arrives, the issuer gets one request per cooldown', async () => {
    const realClock = createAccessTokenVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUri: jwks.url,
      jwks: { cooldownMs: 300 },
      verifiedCache: { maxEntries: 0 },
    });
    await realClock.verify(await accessToken(key));
    const strangers = await Promise.all(Array.from({ length: 5 }, (_, i) => signingKey(`random-${i}`)));
    const tokens = await Promise.all(Array.from({ length: 200 }, (_, i) => accessToken(strangers[i % 5] as SigningKey)));
    const started = Date.now();
    const results = await Promise.allSettled(tokens.map((t) => realClock.verify(t)));
    expect(results.every((result) => result.status === 'rejected' && result.reason instanceof InvalidToken)).toBe(true);
    // the first fetch, then one shared refetch at the end of the cooldown
    expect(jwks.requests).toBe(2);
    // waiting requests are released by that one fetch, not left hanging
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('when a token signed by a just-published key arrives inside the cooldown, it waits for the refetch and passes', async () => {
    const realClock = createAccessTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, jwksUri: jwks.url, jwks: { cooldownMs: 300 } });
    await realClock.verify(await accessToken(key));
    const next = await signingKey('k2');
    jwks.keys = [key.publicJwk, next.publicJwk];
    await expect(realClock.verify(await accessToken(next))).resolves.toMatchObject({ sub: 'user-1' });
    expect(jwks.requests).toBe(2);
  });

  it('when the issuer publishes a new key, a token signed by it is accepted after one refetch', async () => {
    const v = verifier();
    await v.verify(await token(key));
    const next = await signingKey('k2');
    jwks.keys = [key.publicJwk, next.publicJwk];
    clock += 31_000;
    await expect(v.verify(await token(next))).resolves.toMatchObject({ sub: 'user-1' });
    expect(jwks.requests).toBe(2);
  });

  it('when the issuer is unreachable, keeps verifying with the last good keys for staleIfErrorMs', async () => {
    const v = verifier();
    await v.verify(await token(key));
    await jwks.stop();
    clock += 30 * 60_000; // past maxAge: a background refresh fails, the cached keys still serve
    await expect(v.verify(await token(key))).resolves.toMatchObject({ sub: 'user-1' });
    clock += 29 * 60_000;
    await expect(v.verify(await token(key))).resolves.toMatchObject({ sub: 'user-1' });
    clock += 2 * 60_000; // beyond one hour without a successful fetch
    await expect(v.verify(await token(key))).rejects.toThrow(VerifierUnavailable);
  });

  it('when the issuer has never been reachable, refuses with VerifierUnavailable (503), not invalid_token', async () => {
    await jwks.stop();
    await expect(verifier().verify(await token(key))).rejects.toThrow(VerifierUnavailable);
  });

  it('when a token was verified before, the verified-token cache answers without re-verifying until exp', async () => {
    const cached = createAccessTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, jwksUri: jwks.url, now, verifiedCache: { maxAgeMs: 60_000 } });
    const t = await token(key, { exp: Math.floor(clock / 1000) + 45 });
    await cached.verify(t);
    await jwks.stop();
    jwks.keys = [];
    clock += 50_000;
    await expect(cached.verify(t)).resolves.toMatchObject({ sub: 'user-1' });
    clock += 30_000; // exp + 30 s tolerance has passed
    await expect(cached.verify(t)).rejects.toThrow();
  });

  it('refuses to be configured with a symmetric or empty algorithm list (R3)', () => {
    for (const algorithms of [['HS256'], ['none'], [], ['RS256', 'HS512']]) {
      expect(() => createAccessTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, jwksUri: jwks.url, algorithms })).toThrow(TypeError);
    }
  });
});

describe("guard: JWKS freshness follows the issuer's Cache-Control", () => {
  const MAX_AGE_MS = 5 * 60_000;
  const COOLDOWN_MS = 30_000;
  let jwks: JwksServer;
  let key: SigningKey;
  let clock: number;
  const now = () => clock;
  const verifier = () =>
    createAccessTokenVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUri: jwks.url,
      now,
      jwks: { maxAgeMs: MAX_AGE_MS, staleIfErrorMs: 3600_000, cooldownMs: COOLDOWN_MS },
      verifiedCache: { maxEntries: 0 },
    });
  const verifyAt = async (v: AccessTokenVerifier, offsetMs: number) => {
    clock += offsetMs;
    await expect(v.verify(await accessToken(key, {}, {}, Math.floor(clock / 1000)))).resolves.toMatchObject({ sub: 'user-1' });
  };
  /** Waits until the JWKS fetch started at the current `clock` has stored its answer. */
  const landed = async (v: AccessTokenVerifier) => {
    const deadline = Date.now() + 5_000;
    while (v.keys.staleAt !== clock + v.keys.freshnessMs) {
      if (Date.now() > deadline) throw new Error('the JWKS fetch did not land within 5 s');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };

  beforeEach(async () => {
    clock = Date.parse('2026-11-29T10:00:00Z');
    key = await signingKey('k1');
    jwks = new JwksServer();
    jwks.keys = [key.publicJwk];
    await jwks.start();
  });

  afterEach(async () => {
    await jwks.stop();
  });

  it('when the JWKS says max-age=60 and maxAgeMs is 5 minutes, a request at +59 s fetches nothing and one at +61 s refreshes in the background', async () => {
    jwks.cacheControl = 'public, max-age=60';
    const v = verifier();
    await verifyAt(v, 0);
    expect(v.keys.freshnessMs).toBe(60_000);
    await verifyAt(v, 59_000);
    expect(v.keys.fetchCount).toBe(1);
    await verifyAt(v, 2_000); // served from the cached keys, the refresh runs behind it
    expect(v.keys.fetchCount).toBe(2);
    await landed(v);
    expect(jwks.requests).toBe(2);
  });

  it('when the JWKS has no Cache-Control, the refresh follows maxAgeMs', async () => {
    const v = verifier();
    await verifyAt(v, 0);
    expect(v.keys.freshnessMs).toBe(MAX_AGE_MS);
    await verifyAt(v, 61_000);
    await verifyAt(v, MAX_AGE_MS - 62_000);
    expect(v.keys.fetchCount).toBe(1);
    await verifyAt(v, 2_000);
    expect(v.keys.fetchCount).toBe(2);
    await landed(v);
  });

  it.each(['max-age=0', 'no-store', 'No-Cache', 'private, no-cache, max-age=600'])(
    'when the JWKS says %s, the keys are fetched at most once per cooldown however often tokens arrive',
    async (cacheControl) => {
      jwks.cacheControl = cacheControl;
      const v = verifier();
      const fetchedAt: number[] = [];
      const started = clock;
      for (let step = 0; step <= 20; step += 1) {
        const before = v.keys.fetchCount;
        await verifyAt(v, step === 0 ? 0 : 5_000);
        if (v.keys.fetchCount > before) {
          fetchedAt.push(clock - started);
          await landed(v);
        }
      }
      expect(v.keys.freshnessMs).toBe(COOLDOWN_MS);
      // every 5 s for 100 s: the first fetch, then one each time the keys are older than the cooldown
      expect(fetchedAt).toEqual([0, 35_000, 70_000]);
      expect(jwks.requests).toBe(3);
    },
  );

  it('when the JWKS max-age is longer than maxAgeMs, maxAgeMs caps it', async () => {
    jwks.cacheControl = 'public, max-age=3600';
    const v = verifier();
    await verifyAt(v, 0);
    expect(v.keys.freshnessMs).toBe(MAX_AGE_MS);
    await verifyAt(v, MAX_AGE_MS - 1_000);
    expect(v.keys.fetchCount).toBe(1);
    await verifyAt(v, 2_000);
    expect(v.keys.fetchCount).toBe(2);
    await landed(v);
  });

  it.each(['max-age=soon', 'max-age=', 'max-age', 'max-age=-5', 'max-age=1.5', 'max-age=60s'])(
    'when the JWKS Cache-Control is malformed (%s), it is ignored and the refresh follows maxAgeMs',
    async (cacheControl) => {
      jwks.cacheControl = cacheControl;
      const v = verifier();
      await verifyAt(v, 0);
      expect(v.keys.freshnessMs).toBe(MAX_AGE_MS);
      await verifyAt(v, 61_000);
      expect(v.keys.fetchCount).toBe(1);
    },
  );

  it('when a later answer carries another Cache-Control, or none, the freshness follows the latest answer', async () => {
    jwks.cacheControl = 'max-age=60';
    const v = verifier();
    await verifyAt(v, 0);
    jwks.cacheControl = 'max-age=120';
    await verifyAt(v, 61_000);
    await landed(v);
    expect(v.keys.freshnessMs).toBe(120_000);
    jwks.cacheControl = undefined;
    await verifyAt(v, 121_000);
    await landed(v);
    expect(v.keys.freshnessMs).toBe(MAX_AGE_MS);
    expect(v.keys.fetchCount).toBe(3);
  });

  it('when the JWKS says max-age=900 and a token names a new kid, the keys are still refetched (after the cooldown)', async () => {
    jwks.cacheControl = 'public, max-age=900';
    const v = verifier();
    await verifyAt(v, 0);
    const next = await signingKey('k2');
    jwks.keys = [key.publicJwk, next.publicJwk];
    clock += COOLDOWN_MS + 1_000;
    await expect(v.verify(await accessToken(next, {}, {}, Math.floor(clock / 1000)))).resolves.toMatchObject({ sub: 'user-1' });
    expect(v.keys.fetchCount).toBe(2);
  });

  it('when a Cache-Control header is read, directives are case-insensitive, s-maxage is ignored and conflicting max-ages count as stale', () => {
    const cases: [string | null, number | undefined][] = [
      [null, undefined],
      ['', undefined],
      ['public', undefined],
      ['public, max-age=900', 900],
      ['PUBLIC, MAX-AGE=20', 20],
      ['max-age = 60', 60],
      ['max-age="120"', 120],
      ['s-maxage=10', undefined],
      ['s-maxage=10, max-age=60', 60],
      ['max-age=60, max-age=60', 60],
      ['max-age=60, max-age=30', 0],
      ['max-age=60, max-age=soon', undefined],
      ['no-store', 0],
      ['max-age=soon, no-store', 0],
      ['no-cache="set-cookie, x-foo", max-age=60', 0],
      ['max-age=99999999999999', 2 ** 31],
      ['x-ext="max-age=5", max-age=60', 60],
    ];
    for (const [header, expected] of cases) expect([header, cacheControlMaxAge(header)]).toEqual([header, expected]);
  });
});
