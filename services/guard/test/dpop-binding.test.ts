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
