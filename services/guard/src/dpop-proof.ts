import { constants, createHash, createPublicKey, verify as verifySignature, type JsonWebKey, type KeyObject, type VerifyKeyObjectInput } from 'node:crypto';

import { calculateJwkThumbprint, decodeProtectedHeader, type JWK } from 'jose';

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
/** Smallest RSA modulus accepted (RFC 7518 §3.3, §3.5). */
const MIN_RSA_BITS = 2048;
/** Largest RSA modulus accepted: no client needs more, and a larger key costs more to import and check. */
const MAX_RSA_BITS = 8192;
/** A proof's claims are UTF-8 JSON (RFC 7519 §7.2); bytes that are not UTF-8 are refused, not replaced. */
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * How `crypto.verify` checks one JWS algorithm (RFC 7518 §3, RFC 8037 §3.1, RFC 9864), and
 * the keys it takes. node:crypto rather than WebCrypto, which jose 6 uses: its verify is
 * synchronous, and costs half the CPU for ES256 (no hop to the thread pool and back).
 */
interface JwsAlgorithm {
  /** The digest; null for EdDSA, whose curve fixes its own. */
  readonly hash: string | null;
  /** The `asymmetricKeyType`s of the keys it takes. */
  readonly keyTypes: readonly string[];
  /** For ECDSA, the key's curve (node's name) and the length of r ‖ s (RFC 7518 §3.4). */
  readonly curve?: { readonly name: string; readonly signatureLength: number };
  /** For RSASSA-PSS (RFC 7518 §3.5): the salt is as long as the digest. */
  readonly pssSaltLength?: number;
}

const ecdsa = (bits: number, curve: string, signatureLength: number): JwsAlgorithm => ({ hash: `sha${bits}`, keyTypes: ['ec'], curve: { name: curve, signatureLength } });
const rsa = (bits: number, pss: boolean): JwsAlgorithm => ({ hash: `sha${bits}`, keyTypes: ['rsa'], ...(pss ? { pssSaltLength: bits / 8 } : {}) });

/** Every algorithm {@link asymmetricAlgorithms} lets through. */
const JWS_ALGORITHMS: Readonly<Record<string, JwsAlgorithm>> = {
  ES256: ecdsa(256, 'prime256v1', 64),
  ES384: ecdsa(384, 'secp384r1', 96),
  ES512: ecdsa(512, 'secp521r1', 132),
  // EdDSA (RFC 8037) names the curve by the key; Ed25519 (RFC 9864) is that curve only
  EdDSA: { hash: null, keyTypes: ['ed25519', 'ed448'] },
  Ed25519: { hash: null, keyTypes: ['ed25519'] },
  RS256: rsa(256, false),
  RS384: rsa(384, false),
  RS512: rsa(512, false),
  PS256: rsa(256, true),
  PS384: rsa(384, true),
  PS512: rsa(512, true),
};
/** EdDSA signature lengths (RFC 8032 §5.1.6, §5.2.6). */
const EDDSA_SIGNATURE_LENGTHS: Readonly<Record<string, number>> = { ed25519: 64, ed448: 114 };

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
  /**
   * {@link DpopProofVerifier.verify} without a promise, when it can decide at once: the proof's
   * header was seen before (its key is imported) and the replay store answers synchronously
   * (the built-in {@link DpopReplayCache}). True when the proof is valid (it is then
   * remembered); undefined when it cannot decide so (call `verify`).
   * @throws what `verify` rejects with
   */
  verifyCached(request: DpopRequest, accessToken: string, jkt: string): true | undefined;
}

/** What is kept of a proof header: all a proof with it needs to be checked, made once. */
interface ProofKey {
  /** RFC 7638 SHA-256 thumbprint of the proof's `jwk`. */
  readonly thumbprint: string;
  /** `crypto.verify`'s first argument: the digest, or null. */
  readonly hash: string | null;
  /** `crypto.verify`'s key argument: the key with its padding or signature encoding, one object for every proof. */
  readonly verifyKey: VerifyKeyObjectInput;
  /** The only length a signature by this key can have (the curve's, or the RSA modulus's). */
  readonly signatureLength: number;
}

function boundedInteger(value: number | undefined, fallback: number, min: number, max: number, option: string): number {
  const result = value ?? fallback;
  if (!Number.isInteger(result) || result < min || result > max) throw new TypeError(`dpop.${option} must be a whole number from ${min} to ${max}`);
  return result;
}

/** A URL compared as RFC 9449 §4.3 step 9 says: without query and fragment, normalised (RFC 3986 §6.2.2–6.2.3). */
function comparableUrl(value: string): string | undefined {
  const url = URL.parse(value);
  if (url === null) return undefined;
  url.search = '';
  url.hash = '';
  return url.href;
}

/**
 * Whether a proof's `htu` names the request's URL (RFC 9449 §4.3 step 9). A client mostly
 * sends the very string the guard makes of the request, and one string normalises one way
 * (query and fragment included, which both sides lose alike): then all that is left to tell
 * is whether it is a URL at all, which `URL.canParse` does without making one (0.5 µs here,
 * rather than 4.6 for two parses and serialisations).
 */
function sameResource(htu: unknown, requestUrl: string): boolean {
  if (typeof htu !== 'string') return false;
  if (htu === requestUrl) return URL.canParse(htu);
  const comparable = comparableUrl(htu);
  return comparable !== undefined && comparable === comparableUrl(requestUrl);
}

/** Why `key` cannot verify `algorithm` (RFC 7518 §3.3–3.5, RFC 8037 §3.1), or undefined when it can. */
function unsuitable(key: KeyObject, algorithm: JwsAlgorithm): string | undefined {
  const type = key.asymmetricKeyType ?? 'unknown';
  const { namedCurve, modulusLength } = key.asymmetricKeyDetails ?? {};
  if (key.type !== 'public') return 'it is not a public key';
  if (!algorithm.keyTypes.includes(type)) return `it is a key of type ${type}`;
  if (algorithm.curve !== undefined && namedCurve !== algorithm.curve.name) return `it is a key on ${namedCurve ?? 'an unknown curve'}`;
  if (type === 'rsa' && (modulusLength ?? 0) < MIN_RSA_BITS) return `its modulus has ${modulusLength ?? 0} bits (at least ${MIN_RSA_BITS})`;
  if (type === 'rsa' && (modulusLength ?? 0) > MAX_RSA_BITS) return `its modulus has ${modulusLength ?? 0} bits (at most ${MAX_RSA_BITS})`;
  return undefined;
}

/** The signature length of `key` for `algorithm` (it suits it). */
function signatureLength(key: KeyObject, algorithm: JwsAlgorithm): number {
  if (algorithm.curve !== undefined) return algorithm.curve.signatureLength;
  if (algorithm.hash === null) return EDDSA_SIGNATURE_LENGTHS[key.asymmetricKeyType ?? ''] ?? 0;
  return Math.ceil((key.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
}

/**
 * The key of a proof's protected header, checked as RFC 9449 §4.3 steps 4–7 say: `typ`
 * `dpop+jwt`, an accepted asymmetric `alg`, and a `jwk` holding a public key only, of the
 * type (and curve, or modulus size) `alg` takes. Checked here too, once per header, what
 * jose's `jwtVerify` refused: `crit` (the guard understands no extension, RFC 7515 §4.1.11)
 * and `b64` (RFC 7797: a JWT's payload is always base64url JSON).
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
  const algorithm = typeof alg === 'string' && algorithms.includes(alg) ? JWS_ALGORITHMS[alg] : undefined;
  if (algorithm === undefined) throw new InvalidDpopProof(`alg ${JSON.stringify(alg)} is not one of ${algorithms.join(' ')}`);
  if ('crit' in header) throw new InvalidDpopProof('the proof header has crit (no extension is understood)');
  if ('b64' in header) throw new InvalidDpopProof('the proof header has b64 (the payload must be base64url JSON)');
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) throw new InvalidDpopProof('the proof header has no jwk');
  const member = PRIVATE_MEMBERS.find((name) => name in jwk);
  if (member !== undefined) throw new InvalidDpopProof(`the proof's jwk carries the private or symmetric member "${member}"`);
  // as WebCrypto did on import (RFC 7517 §4.3): a key whose key_ops are given is used for nothing but them
  const { key_ops: operations, ext } = jwk as JWK;
  if (operations !== undefined && !(Array.isArray(operations) && operations.length === 1 && operations[0] === 'verify')) {
    throw new InvalidDpopProof(`the proof's jwk has key_ops ${JSON.stringify(operations)}, not ["verify"]`);
  }
  if (ext !== undefined && typeof ext !== 'boolean') throw new InvalidDpopProof('the proof\'s jwk has an ext that is not a boolean');
  let key;
  try {
    key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
  } catch (error) {
    throw new InvalidDpopProof(`the proof's jwk is not a ${alg} public key: ${(error as Error).message}`, { cause: error });
  }
  const why = unsuitable(key, algorithm);
  if (why !== undefined) throw new InvalidDpopProof(`the proof's jwk is not a ${alg} public key: ${why}`);
  let thumbprint;
  try {
    thumbprint = await calculateJwkThumbprint(jwk as JWK, 'sha256');
  } catch (error) {
    throw new InvalidDpopProof(`the proof's jwk has no thumbprint: ${(error as Error).message}`, { cause: error });
  }
  const verifyKey: VerifyKeyObjectInput =
    algorithm.curve !== undefined
      ? { key, dsaEncoding: 'ieee-p1363' }
      : algorithm.pssSaltLength !== undefined
        ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: algorithm.pssSaltLength }
        : { key };
  return { thumbprint, hash: algorithm.hash, verifyKey, signatureLength: signatureLength(key, algorithm) };
}

/** A base64url segment's bytes; a length no encoding has (4n + 1) is refused, as jose did. */
function base64url(segment: string): Buffer | undefined {
  return segment.length % 4 === 1 ? undefined : Buffer.from(segment, 'base64url');
}

/** The claims of a proof whose signature was verified: a JSON object (RFC 7519 §7.2 steps 9–10). */
function proofClaims(encodedPayload: string): Record<string, unknown> {
  let payload: unknown;
  try {
    const bytes = base64url(encodedPayload);
    payload = bytes === undefined ? undefined : JSON.parse(UTF8.decode(bytes));
  } catch (error) {
    throw new InvalidDpopProof('the proof payload is not UTF-8 JSON', { cause: error });
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw new InvalidDpopProof('the proof payload is not a JSON object');
  return payload as Record<string, unknown>;
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
  /** The same keys once imported, for the synchronous path (an entry goes with its promise). */
  const importedKeys = new Map<string, ProofKey>();
  // only the built-in cache is known to answer synchronously; another store may answer either way
  const syncReplays = replays instanceof DpopReplayCache ? replays : undefined;

  /** The key of a proof, from the cache when its header was seen before. */
  function keyOf(proof: string): Promise<ProofKey> {
    const encodedHeader = proof.slice(0, proof.indexOf('.'));
    let key = keys.get(encodedHeader);
    if (key === undefined) {
      if (keys.size >= KEY_CACHE_ENTRIES) {
        const oldest = keys.keys().next().value ?? '';
        keys.delete(oldest);
        importedKeys.delete(oldest);
      }
      key = proofKey(proof, algorithms);
      keys.set(encodedHeader, key);
      key.then(
        (imported) => {
          if (keys.get(encodedHeader) === key) importedKeys.set(encodedHeader, imported);
        },
        // a header refused once is refused again, but is not kept
        () => keys.delete(encodedHeader),
      );
    }
    return key;
  }

  /** RFC 9449 §4.3 steps 8–11 (but the nonce and the time: see verify). */
  function checkRequestClaims(payload: Record<string, unknown>, request: DpopRequest, accessToken: string): string {
    const { jti } = payload;
    if (typeof jti !== 'string' || jti === '' || jti.length > MAX_JTI_LENGTH) throw new InvalidDpopProof('the proof has no usable jti');
    if (payload['htm'] !== request.method) throw new InvalidDpopProof(`htm ${JSON.stringify(payload['htm'])} is not the request method ${request.method}`);
    if (!sameResource(payload['htu'], request.url)) throw new InvalidDpopProof(`htu ${JSON.stringify(payload['htu'])} is not the request URL ${request.url}`);
    // RFC 9449 §4.2: ath, the base64url SHA-256 of the access token the proof goes with
    if (payload['ath'] !== createHash('sha256').update(accessToken).digest('base64url')) throw new InvalidDpopProof('ath is not the hash of the access token sent');
    return jti;
  }

  /** The proof's `iat`, if within [now − maxAge, now + skew] (RFC 9449 §4.3 step 11, §11.1). */
  function checkAge(payload: Record<string, unknown>, nowSeconds: number): number {
    const { iat } = payload;
    if (typeof iat !== 'number' || !Number.isFinite(iat)) throw new InvalidDpopProof('the proof has no iat');
    if (iat < nowSeconds - maxAge) throw new InvalidDpopProof(`iat is ${nowSeconds - iat} s old (at most ${maxAge} s)`);
    if (iat > nowSeconds + skew) throw new InvalidDpopProof(`iat is ${iat - nowSeconds} s in the future (at most ${skew} s)`);
    return iat;
  }

  /**
   * `exp` and `nbf` (RFC 7519 §4.1.4–4.1.5), which a proof need not carry but must not break
   * when it does, as jose's `jwtVerify` checked, here with the skew `iat` is given.
   */
  function checkValidity(payload: Record<string, unknown>, nowSeconds: number): void {
    const { exp, nbf } = payload;
    if (exp !== undefined && typeof exp !== 'number') throw new InvalidDpopProof('exp is not a number');
    if (nbf !== undefined && typeof nbf !== 'number') throw new InvalidDpopProof('nbf is not a number');
    if (exp !== undefined && exp <= nowSeconds - skew) throw new InvalidDpopProof(`exp was ${nowSeconds - exp} s ago (at most ${skew} s of skew)`);
    if (nbf !== undefined && nbf > nowSeconds + skew) throw new InvalidDpopProof(`nbf is ${nbf - nowSeconds} s in the future (at most ${skew} s)`);
  }

  /** What the replay store remembers a proof by, and until when (when it is too old anyway). */
  function replayEntry(thumbprint: string, jti: string, iat: number): { id: string; expiresAt: number } {
    return { id: createHash('sha256').update(thumbprint).update(jti).digest('base64url').slice(0, 22), expiresAt: (Math.floor(iat) + maxAge + 1) * 1000 };
  }

  /** Remembers the proof (its key and jti) until it is too old anyway; a proof seen before is refused. */
  async function refuseReplay(thumbprint: string, jti: string, iat: number): Promise<void> {
    const { id, expiresAt } = replayEntry(thumbprint, jti, iat);
    let unseen;
    try {
      unseen = await replays.use(id, expiresAt);
    } catch (error) {
      if (error instanceof GuardError) throw error;
      throw new VerifierUnavailable('DPoP replay store failed', { cause: error });
    }
    if (!unseen) throw new InvalidDpopProof('the proof was used before (its jti is remembered)');
  }

  /** The proof's well-formedness (RFC 9449 §4.3 steps 1–2), before its key is looked up. */
  function compactProof(proof: string | undefined): string {
    if (proof === undefined || proof === '') throw new InvalidDpopProof('no DPoP proof (DPoP header)');
    if (!COMPACT_JWS.test(proof)) throw new InvalidDpopProof('the DPoP header is not one compact JWS');
    return proof;
  }

  /** Every check but the replay, with the proof's key at hand: what the replay store must remember. */
  function checkProof(proof: string, key: ProofKey, request: DpopRequest, accessToken: string, jkt: string): { jti: string; iat: number } {
    const { thumbprint, hash, verifyKey, signatureLength: length } = key;
    // RFC 9449 §7.1: the proof must be made with the key the token is bound to
    if (thumbprint !== jkt) throw new InvalidDpopProof('the proof is signed by another key than the token\'s cnf.jkt');
    const payloadEnd = proof.lastIndexOf('.');
    const signature = base64url(proof.slice(payloadEnd + 1));
    if (signature?.length !== length) throw new InvalidDpopProof(`the proof's signature is not ${length} bytes long`);
    let valid;
    try {
      // the signing input is ASCII (COMPACT_JWS), so latin1 is its bytes
      valid = verifySignature(hash, Buffer.from(proof.slice(0, payloadEnd), 'latin1'), verifyKey, signature);
    } catch (error) {
      throw new InvalidDpopProof(`the proof's signature cannot be verified: ${(error as Error).message}`, { cause: error });
    }
    if (!valid) throw new InvalidDpopProof('the proof\'s signature is not valid');
    const payload = proofClaims(proof.slice(proof.indexOf('.') + 1, payloadEnd));
    const nowSeconds = Math.floor(now() / 1000);
    checkValidity(payload, nowSeconds);
    const jti = checkRequestClaims(payload, request, accessToken);
    if (nonces !== undefined && !nonces.accepts(payload['nonce'])) {
      throw new UseDpopNonce(nonces.current(), payload['nonce'] === undefined ? 'the proof has no nonce' : 'the proof\'s nonce is not a current one');
    }
    const iat = checkAge(payload, nowSeconds);
    return { jti, iat };
  }

  return {
    algorithms,
    nonces,
    async verify(request, accessToken, jkt) {
      const proof = compactProof(request.proof);
      const key = await keyOf(proof);
      const { jti, iat } = checkProof(proof, key, request, accessToken, jkt);
      await refuseReplay(key.thumbprint, jti, iat);
    },
    verifyCached(request, accessToken, jkt) {
      if (syncReplays === undefined) return undefined;
      const proof = compactProof(request.proof);
      const key = importedKeys.get(proof.slice(0, proof.indexOf('.')));
      if (key === undefined) return undefined;
      const { jti, iat } = checkProof(proof, key, request, accessToken, jkt);
      const { id, expiresAt } = replayEntry(key.thumbprint, jti, iat);
      if (!syncReplays.use(id, expiresAt)) throw new InvalidDpopProof('the proof was used before (its jti is remembered)');
      return true;
    },
  };
}
