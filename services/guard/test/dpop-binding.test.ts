import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import { createHash, randomUUID } from 'node:crypto';

import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

import { createAccessTokenVerifier, createGuard } from '../src/index.js';
import { accessToken, AUDIENCE, guardedApp, ISSUER, JwksServer, signingKey, type SigningKey } from './support.js';

interface DpopKey {
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
  readonly thumbprint: string;
}

async function dpopKey(): Promise<DpopKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const publicJwk = await exportJWK(publicKey);
  return { privateKey, publicJwk, thumbprint: await calculateJwkThumbprint(publicJwk) };
}

/** A DPoP proof (RFC 9449 §4.2) for `htm` `htu` with the access token's hash. */
function dpopProof(key: DpopKey, { htm, htu, accessToken: token }: { htm: string; htu: string; accessToken: string }): Promise<string> {
  const ath = createHash('sha256').update(token).digest('base64url');
  return new SignJWT({ htm, htu, ath, jti: randomUUID(), iat: Math.floor(Date.now() / 1000) })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.publicJwk })
    .sign(key.privateKey);
}

/** A DPoP proof with a server nonce (RFC 9449 §9), for `htm` `htu` and the hash of `accessToken`. */
function noncedProof(key: DpopKey, { htm, htu, accessToken: token, nonce }: { htm: string; htu: string; accessToken: string; nonce: string }): Promise<string> {
  const ath = createHash('sha256').update(token).digest('base64url');
  return new SignJWT({ htm, htu, ath, nonce, jti: randomUUID(), iat: Math.floor(Date.now() / 1000) })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.publicJwk })
    .sign(key.privateKey);
}

const INVALID = (scheme: 'Bearer' | 'DPoP') =>
  `${scheme} realm="${AUDIENCE}", error="invalid_token", error_description="the access token or API key is invalid"${scheme === 'DPoP' ? ', algs="ES256 Ed25519 EdDSA"' : ''}`;

describe('guard: what a token is bound to (R11)', () => {
  const jwks = new JwksServer();
  let issuerKey: SigningKey;
  let proofKey: DpopKey;
  let app: Awaited<ReturnType<typeof guardedApp>>;

  beforeAll(async () => {
    issuerKey = await signingKey('issuer-key');
    proofKey = await dpopKey();
    jwks.keys = [issuerKey.publicJwk];
    await jwks.start();
    app = await guardedApp({ issuer: ISSUER, audience: AUDIENCE, jwksUri: jwks.url });
  });

  afterAll(async () => {
    await app?.close();
    await jwks.stop();
  });

  it.each([
    ['an mTLS certificate (cnf with x5t#S256 only)', { 'x5t#S256': 'bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2' }],
    ['an empty cnf', {}],
    ['a jkt that is not a string', { jkt: 42 }],
  ])('when a token is bound to something other than a DPoP key (cnf without jkt): %s, it is refused as Bearer and with the DPoP scheme', async (_name, cnf) => {
    const token = await accessToken(issuerKey, { cnf });
    const url = `${app.url}/orders`;
    const bearer = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    expect(bearer.status).toBe(401);
    expect(bearer.headers.get('www-authenticate')).toBe(INVALID('Bearer'));
    const dpop = await fetch(url, { headers: { authorization: `DPoP ${token}`, dpop: await dpopProof(proofKey, { htm: 'GET', htu: url, accessToken: token }) } });
    expect(dpop.status).toBe(401);
    expect(dpop.headers.get('www-authenticate')).toBe(INVALID('DPoP'));
  });

  it('when a token is bound to the proof key, it passes with a fresh proof, and the principal carries confirmation.jkt', async () => {
    const token = await accessToken(issuerKey, { cnf: { jkt: proofKey.thumbprint } });
    const url = `${app.url}/me`;
    const response = await fetch(url, { headers: { authorization: `dpop  ${token}`, dpop: await dpopProof(proofKey, { htm: 'GET', htu: url, accessToken: token }) } });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ sub: 'user-1', confirmation: { jkt: proofKey.thumbprint } });
  });

  it('refuses to be configured with a symmetric or empty proof algorithm list, a bad window or a bad public URL (R3, R12)', () => {
    const base = { issuer: ISSUER, audience: AUDIENCE, jwksUri: jwks.url };
    for (const algorithms of [['HS256'], ['none'], []]) expect(() => createAccessTokenVerifier({ ...base, dpop: { algorithms } })).toThrow(TypeError);
    for (const maxAgeSeconds of [0, 3601, 1.5]) expect(() => createAccessTokenVerifier({ ...base, dpop: { maxAgeSeconds } })).toThrow(TypeError);
    for (const publicUrl of ['api.example.com', 'ftp://api.example.com', 'https://api.example.com/?x=1', 'https://api.example.com/#f']) {
      expect(() => createGuard({ ...base, publicUrl })).toThrow(TypeError);
    }
  });
});

describe('guard: a cached DPoP-bound token takes the synchronous path, with every proof check (R12)', () => {
  const jwks = new JwksServer();
  let issuerKey: SigningKey;
  let proofKey: DpopKey;
  let app: Awaited<ReturnType<typeof guardedApp>>;
  const INVALID_PROOF = `DPoP realm="${AUDIENCE}", error="invalid_dpop_proof", error_description="a DPoP-bound access token needs the DPoP scheme and a valid DPoP proof of its key for this request", algs="ES256 Ed25519 EdDSA"`;

  beforeAll(async () => {
    issuerKey = await signingKey('issuer-key');
    proofKey = await dpopKey();
    jwks.keys = [issuerKey.publicJwk];
    await jwks.start();
    app = await guardedApp({ issuer: ISSUER, audience: AUDIENCE, jwksUri: jwks.url, dpop: { nonces: { secret: 'a'.repeat(32) } } });
  });

  afterAll(async () => {
    await app?.close();
    await jwks.stop();
  });

  /** A token bound to the proof key, verified once over HTTP (so cached), and the URL it is used at. */
  async function cachedToken(): Promise<{ token: string; url: string; nonce: string }> {
    const token = await accessToken(issuerKey, { cnf: { jkt: proofKey.thumbprint } });
    const url = `${app.url}/orders`;
    const first = await fetch(url, { headers: { authorization: `DPoP ${token}`, dpop: await dpopProof(proofKey, { htm: 'GET', htu: url, accessToken: token }) } });
    expect(first.status).toBe(401);
    const nonce = first.headers.get('dpop-nonce') ?? '';
    const second = await fetch(url, { headers: { authorization: `DPoP ${token}`, dpop: await noncedProof(proofKey, { htm: 'GET', htu: url, accessToken: token, nonce }) } });
    expect(second.status).toBe(200);
    return { token, url, nonce: second.headers.get('dpop-nonce') ?? nonce };
  }

  it('when the token is cached and the proof key known, a fresh proof is decided without a promise, and is then refused as a replay', async () => {
    const { token, url, nonce } = await cachedToken();
    const proof = await noncedProof(proofKey, { htm: 'GET', htu: url, accessToken: token, nonce });
    const principal = app.guard.verifier.cachedDpop(token, { proof, method: 'GET', url });
    expect(principal).toMatchObject({ sub: 'user-1', confirmation: { jkt: proofKey.thumbprint } });
    const replayed = await fetch(url, { headers: { authorization: `DPoP ${token}`, dpop: proof } });
    expect(replayed.status).toBe(401);
    expect(replayed.headers.get('www-authenticate')).toBe(INVALID_PROOF);
  });

  it.each([
    ['another method', { htm: 'POST' }],
    ['another URL', { htu: 'http://127.0.0.1:1/orders' }],
    ['the hash of another token', { accessToken: 'other' }],
  ])('when the token is cached and the proof is made for %s, the synchronous path refuses it as the full path does (401 invalid_dpop_proof)', async (_name, change) => {
    const { token, url, nonce } = await cachedToken();
    const proof = await noncedProof(proofKey, { htm: 'GET', htu: url, accessToken: token, nonce, ...change });
    const response = await fetch(url, { headers: { authorization: `DPoP ${token}`, dpop: proof } });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe(INVALID_PROOF);
  });

  it('when the token is cached but the proof is signed by another key, or carries no current nonce, it is refused; a valid answer carries a fresh DPoP-Nonce', async () => {
    const { token, url, nonce } = await cachedToken();
    const otherKey = await dpopKey();
    const other = await fetch(url, { headers: { authorization: `DPoP ${token}`, dpop: await noncedProof(otherKey, { htm: 'GET', htu: url, accessToken: token, nonce }) } });
    expect(other.status).toBe(401);
    const stale = await fetch(url, { headers: { authorization: `DPoP ${token}`, dpop: await noncedProof(proofKey, { htm: 'GET', htu: url, accessToken: token, nonce: 'not-a-nonce' }) } });
    expect(stale.status).toBe(401);
    expect(stale.headers.get('www-authenticate')).toMatch(/error="use_dpop_nonce"/u);
    const valid = await fetch(url, { headers: { authorization: `DPoP ${token}`, dpop: await noncedProof(proofKey, { htm: 'GET', htu: url, accessToken: token, nonce }) } });
    expect(valid.status).toBe(200);
    expect(valid.headers.get('dpop-nonce')).toEqual(expect.any(String));
  });

  it('when the replay store is one of the service\'s own (it may answer later), the synchronous path steps aside and the full path decides, replays refused', async () => {
    const seen = new Set<string>();
    const own = await guardedApp({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUri: jwks.url,
      dpop: { replayStore: { use: async (id: string) => (seen.has(id) ? false : (seen.add(id), true)) } },
    });
    try {
      const token = await accessToken(issuerKey, { cnf: { jkt: proofKey.thumbprint } });
      const url = `${own.url}/orders`;
      const proofs = await Promise.all([0, 1].map(() => dpopProof(proofKey, { htm: 'GET', htu: url, accessToken: token })));
      for (const proof of proofs) expect((await fetch(url, { headers: { authorization: `DPoP ${token}`, dpop: proof } })).status).toBe(200);
      const third = await dpopProof(proofKey, { htm: 'GET', htu: url, accessToken: token });
      expect(own.guard.verifier.cachedDpop(token, { proof: third, method: 'GET', url })).toBeUndefined();
      expect((await fetch(url, { headers: { authorization: `DPoP ${token}`, dpop: proofs[0] ?? '' } })).status).toBe(401);
      expect(seen.size).toBe(2);
    } finally {
      await own.close();
    }
  });
});

