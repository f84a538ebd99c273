import { createHash } from 'node:crypto';

import { calculateJwkThumbprint, decodeProtectedHeader, errors, importJWK, jwtVerify, type CryptoKey, type JWK, type JWTPayload } from 'jose';

import { asymmetricAlgorithms } from './algorithms.js';
import { GuardError, InvalidDpopProof, UseDpopNonce, VerifierUnavailable } from './errors.js';
import { DpopNonces, type DpopNonceOptions } from './dpop-nonce.js';
import { DpopReplayCache, type DpopReplayCacheOptions, type DpopReplayStore } from './dpop-replay-cache.js';

/** The issuer's proof algorithms (its `dpop_signing_alg_values_supported`). */
export const DEFAULT_DPOP_ALGORITHMS: readonly string[] = ['ES256', 'Ed25519', 'EdDSA'];
/** JWS compact serialization (RFC 7515 §7.1); two `DPoP` headers, joined by node with ", ", are not one. */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/u;
/** JWK members of a private or symmetric key (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2): a proof carries a public key only. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;
/** Longest `jti` remembered (RFC 9449 §4.2 asks for a random one; 256 characters is generous). */
const MAX_JTI_LENGTH = 256;
/** Proof headers (and so client keys) whose imported key and thumbprint are kept. */
const KEY_CACHE_ENTRIES = 1_000;

/**
 * How a guard checks DPoP proofs (RFC 9449 §4.3, §7). Every option has a default.
 *
 * @example
 * ```ts
 * createGuard({
 *   issuer, audience,
 *   dpop: { maxAgeSeconds: 30, nonces: { secret: process.env.DPOP_NONCE_SECRET! }, replayStore: sharedStore },
 * });
 * ```
 */
export interface DpopOptions {
  /** Accepted proof algorithms; asymmetric ones only. Default the issuer's: `ES256`, `Ed25519`, `EdDSA`. */
  readonly algorithms?: readonly string[];
  /** A proof is accepted for this many seconds after its `iat`. Default 60 (at most 3600). */
  readonly maxAgeSeconds?: number;
  /** A proof's `iat` may be this many seconds ahead of this machine's clock. Default 5 (at most 300). */
  readonly clockSkewSeconds?: number;
  /** Where accepted proofs are remembered. Default: a {@link DpopReplayCache} of this process, sized by `replayCache`. */
  readonly replayStore?: DpopReplayStore;
  /** The default replay store's bound (see {@link DpopReplayCacheOptions}); ignored with `replayStore`. */
  readonly replayCache?: Omit<DpopReplayCacheOptions, 'now'>;
  /**
   * Server nonces (RFC 9449 §9): every proof must carry a nonce this service handed out in a
   * `DPoP-Nonce` header, or it is answered 401 `use_dpop_nonce` with one. `true` for the
   * defaults. Off by default.
   */
  readonly nonces?: boolean | Omit<DpopNonceOptions, 'now'>;
}

/** The request a proof must be for: its `DPoP` header, method and URL. */
export interface DpopRequest {
  /** The `DPoP` header; undefined when there is none. */
  readonly proof: string | undefined;
  /** The HTTP method, as sent (`GET`). */
  readonly method: string;
  /** The URL the client addressed: the service's public URL when it sits behind a proxy (RFC 9449 §4.3 step 9). */
  readonly url: string;
}

/** Checks DPoP proofs for requests with DPoP-bound access tokens. */
export interface DpopProofVerifier {
  /** The accepted algorithms (the challenge's `algs`, RFC 9449 §7.1). */
  readonly algorithms: readonly string[];
  /** The nonce source, when the service asks for nonces. */
  readonly nonces: DpopNonces | undefined;
  /**
   * Verifies that `request` carries a valid, fresh, unreplayed proof, made for it and for
   * `accessToken` with the key whose thumbprint is `jkt` (the token's `cnf.jkt`); the proof is
   * then remembered, so that it is never accepted again.
   * @throws InvalidDpopProof, UseDpopNonce, or VerifierUnavailable when the replay store cannot tell
   */
  verify(request: DpopRequest, accessToken: string, jkt: string): Promise<void>;
}

interface ProofKey {
  readonly alg: string;
  readonly key: CryptoKey;
  /** RFC 7638 SHA-256 thumbprint of the proof's `jwk`. */
  readonly thumbprint: string;
}

function boundedInteger(value: number | undefined, fallback: number, min: number, max: number, option: string): number {
  const result = value ?? fallback;
  if (!Number.isInteger(result) || result < min || result > max) throw new TypeError(`dpop.${option} must be a whole number from ${min} to ${max}`);
  return result;
}

/** A URL compared as RFC 9449 §4.3 step 9 says: without query and fragment, normalised (RFC 3986 §6.2.2–6.2.3). */
function comparableUrl(value: unknown): string | undefined {
  const url = typeof value === 'string' ? URL.parse(value) : null;
  if (url === null) return undefined;
  url.search = '';
  url.hash = '';
  return url.href;
}

/**
 * The key of a proof's protected header, checked as RFC 9449 §4.3 steps 4–7 say: `typ`
 * `dpop+jwt`, an accepted asymmetric `alg`, and a `jwk` holding a public key only.
 */
async function proofKey(proof: string, algorithms: readonly string[]): Promise<ProofKey> {
  let header;
  try {
    header = decodeProtectedHeader(proof);
  } catch (error) {
    throw new InvalidDpopProof('the proof header is not JSON', { cause: error });
  }
  const typ = typeof header.typ === 'string' ? header.typ.toLowerCase().replace(/^application\//u, '') : undefined;
  if (typ !== 'dpop+jwt') throw new InvalidDpopProof(`typ ${JSON.stringify(header.typ)} is not dpop+jwt`);
  const { alg, jwk } = header;
  if (typeof alg !== 'string' || !algorithms.includes(alg)) throw new InvalidDpopProof(`alg ${JSON.stringify(alg)} is not one of ${algorithms.join(' ')}`);
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) throw new InvalidDpopProof('the proof header has no jwk');
  const member = PRIVATE_MEMBERS.find((name) => name in jwk);
  if (member !== undefined) throw new InvalidDpopProof(`the proof's jwk carries the private or symmetric member "${member}"`);
  try {
    const key = await importJWK(jwk as JWK, alg);
    if (!('type' in key) || key.type !== 'public') throw new InvalidDpopProof('the proof\'s jwk is not a public key');
    return { alg, key, thumbprint: await calculateJwkThumbprint(jwk as JWK, 'sha256') };
  } catch (error) {
    if (error instanceof GuardError) throw error;
    throw new InvalidDpopProof(`the proof's jwk is not a ${alg} public key: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * The verifier of DPoP proofs for a guard. Proof keys are imported once per distinct proof
 * header (a client sends the same header with every proof) and kept, at most
 * {@link KEY_CACHE_ENTRIES}; the signature, the claims and the replay are checked every time.
 *
 * @example
 * ```ts
 * const proofs = createDpopProofVerifier({ maxAgeSeconds: 30 });
 * await proofs.verify({ proof: req.get('dpop'), method: 'GET', url: 'https://orders.example.com/orders' }, token, claims.cnf.jkt);
 * ```
 */
export function createDpopProofVerifier(options: DpopOptions & { readonly now?: () => number } = {}): DpopProofVerifier {
  const algorithms = asymmetricAlgorithms(options.algorithms ?? DEFAULT_DPOP_ALGORITHMS, 'dpop.algorithms');
  const maxAge = boundedInteger(options.maxAgeSeconds, 60, 1, 3600, 'maxAgeSeconds');
  const skew = boundedInteger(options.clockSkewSeconds, 5, 0, 300, 'clockSkewSeconds');
  const now = options.now ?? Date.now;
  const replays = options.replayStore ?? new DpopReplayCache({ ...options.replayCache, now });
  const nonceOptions = options.nonces === true ? {} : options.nonces === false ? undefined : options.nonces;
  const nonces = nonceOptions === undefined ? undefined : new DpopNonces({ ...nonceOptions, now });
  const keys = new Map<string, Promise<ProofKey>>();

  /** The key of a proof, from the cache when its header was seen before. */
  function keyOf(proof: string): Promise<ProofKey> {
    const encodedHeader = proof.slice(0, proof.indexOf('.'));
    let key = keys.get(encodedHeader);
    if (key === undefined) {
      if (keys.size >= KEY_CACHE_ENTRIES) keys.delete(keys.keys().next().value ?? '');
      key = proofKey(proof, algorithms);
      keys.set(encodedHeader, key);
      // a header refused once is refused again, but is not kept
      key.catch(() => keys.delete(encodedHeader));
    }
    return key;
  }

  /** RFC 9449 §4.3 steps 8–11 (but the nonce and the time: see verify). */
  function checkRequestClaims(payload: JWTPayload, request: DpopRequest, accessToken: string): string {
    const { jti } = payload;
    if (typeof jti !== 'string' || jti === '' || jti.length > MAX_JTI_LENGTH) throw new InvalidDpopProof('the proof has no usable jti');
    if (payload['htm'] !== request.method) throw new InvalidDpopProof(`htm ${JSON.stringify(payload['htm'])} is not the request method ${request.method}`);
    const htu = comparableUrl(payload['htu']);
    if (htu === undefined || htu !== comparableUrl(request.url)) throw new InvalidDpopProof(`htu ${JSON.stringify(payload['htu'])} is not the request URL ${request.url}`);
    // RFC 9449 §4.2: ath, the base64url SHA-256 of the access token the proof goes with
    if (payload['ath'] !== createHash('sha256').update(accessToken).digest('base64url')) throw new InvalidDpopProof('ath is not the hash of the access token sent');
    return jti;
  }

  /** The proof's `iat`, if within [now − maxAge, now + skew] (RFC 9449 §4.3 step 11, §11.1). */
  function checkAge(payload: JWTPayload, nowSeconds: number): number {
    const { iat } = payload;
    if (typeof iat !== 'number' || !Number.isFinite(iat)) throw new InvalidDpopProof('the proof has no iat');
    if (iat < nowSeconds - maxAge) throw new InvalidDpopProof(`iat is ${nowSeconds - iat} s old (at most ${maxAge} s)`);
    if (iat > nowSeconds + skew) throw new InvalidDpopProof(`iat is ${iat - nowSeconds} s in the future (at most ${skew} s)`);
    return iat;
  }

  /** Remembers the proof (its key and jti) until it is too old anyway; a proof seen before is refused. */
  async function refuseReplay(thumbprint: string, jti: string, iat: number): Promise<void> {
    const id = createHash('sha256').update(thumbprint).update(jti).digest('base64url').slice(0, 22);
    let unseen;
    try {
      unseen = await replays.use(id, (Math.floor(iat) + maxAge + 1) * 1000);
    } catch (error) {
      if (error instanceof GuardError) throw error;
      throw new VerifierUnavailable('DPoP replay store failed', { cause: error });
    }
    if (!unseen) throw new InvalidDpopProof('the proof was used before (its jti is remembered)');
  }

  return {
    algorithms,
    nonces,
    async verify(request, accessToken, jkt) {
      const { proof } = request;
      if (proof === undefined || proof === '') throw new InvalidDpopProof('no DPoP proof (DPoP header)');
      if (!COMPACT_JWS.test(proof)) throw new InvalidDpopProof('the DPoP header is not one compact JWS');
      const { alg, key, thumbprint } = await keyOf(proof);
      // RFC 9449 §7.1: the proof must be made with the key the token is bound to
      if (thumbprint !== jkt) throw new InvalidDpopProof('the proof is signed by another key than the token\'s cnf.jkt');
      let payload;
      try {
        ({ payload } = await jwtVerify(proof, key, { algorithms: [alg], typ: 'dpop+jwt', currentDate: new Date(now()) }));
      } catch (error) {
        const code = error instanceof errors.JOSEError ? error.code : 'ERR_UNKNOWN';
        throw new InvalidDpopProof(`${code}: ${(error as Error).message}`, { cause: error });
      }
      const jti = checkRequestClaims(payload, request, accessToken);
      if (nonces !== undefined && !nonces.accepts(payload['nonce'])) {
        throw new UseDpopNonce(nonces.current(), payload['nonce'] === undefined ? 'the proof has no nonce' : 'the proof\'s nonce is not a current one');
      }
      const iat = checkAge(payload, Math.floor(now() / 1000));
      await refuseReplay(thumbprint, jti, iat);
    },
  };
}
