import { createHash, randomUUID } from 'node:crypto';

import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

/** A client's DPoP key pair (RFC 9449 §4.1): the private key signs proofs, the public JWK goes in their header. */
export interface DpopKey {
  readonly alg: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
  /** The JWK SHA-256 thumbprint (RFC 7638): what a bound token's `cnf.jkt` names. */
  readonly thumbprint: string;
}

export async function dpopKey(alg = 'ES256'): Promise<DpopKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  return { alg, privateKey, publicJwk, thumbprint: await calculateJwkThumbprint(publicJwk) };
}

/** `ath`: base64url(SHA-256(access token)) (RFC 9449 §4.2). */
export const accessTokenHash = (token: string): string => createHash('sha256').update(token).digest('base64url');

export interface ProofClaims {
  readonly htm: string;
  readonly htu: string;
  /** The access token the proof goes with (its `ath`), for a resource request. */
  readonly accessToken?: string;
  readonly jti?: string;
  /** Seconds since the epoch; default now. */
  readonly iat?: number;
  readonly nonce?: string;
  /** Claims set as given, over the computed ones (`ath: 'x'`, `htu: undefined`…). */
  readonly override?: Record<string, unknown>;
}

/**
 * A DPoP proof JWT (RFC 9449 §4.2) signed by `key`, every part of which a test may set: the
 * header (`typ`, `alg`, `jwk`) through `header`, the claims through `claims`.
 */
export function dpopProof(key: DpopKey, claims: ProofClaims, header: Record<string, unknown> = {}): Promise<string> {
  const payload: Record<string, unknown> = {
    htm: claims.htm,
    htu: claims.htu,
    jti: claims.jti ?? randomUUID(),
    iat: claims.iat ?? Math.floor(Date.now() / 1000),
    ...(claims.accessToken === undefined ? {} : { ath: accessTokenHash(claims.accessToken) }),
    ...(claims.nonce === undefined ? {} : { nonce: claims.nonce }),
    ...claims.override,
  };
  return new SignJWT(payload).setProtectedHeader({ alg: key.alg, typ: 'dpop+jwt', jwk: key.publicJwk, ...header }).sign(key.privateKey);
}
