import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';

import { createAccessTokenVerifier, InvalidToken, VerifierUnavailable } from '../src/index.js';
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
