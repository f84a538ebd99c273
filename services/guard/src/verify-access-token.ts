import { decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';

import { asymmetricAlgorithms } from './algorithms.js';
import { createDpopProofVerifier, type DpopOptions, type DpopProofVerifier, type DpopRequest } from './dpop-proof.js';
import { GuardError, InvalidDpopProof, InvalidToken, VerifierUnavailable } from './errors.js';
import { JwksCache, type JwksCacheOptions } from './jwks-cache.js';
import { actorChain, frozenPrincipal, scopeList, stringArray, type Principal } from './principal.js';
import type { RevocableClaims } from './revocation-feed.js';
import { VerdictCache } from './verified-cache.js';

/** Header parameters that could point at a key; the key comes only from the JWKS (RFC 8725 §3.10). */
const KEY_POINTERS = ['jku', 'jwk', 'x5u', 'x5c'] as const;
/** JWS compact serialization (RFC 7515 §7.1): three unpadded base64url parts, nothing else. */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/u;

/**
 * @example
 * ```ts
 * createAccessTokenVerifier({ issuer, audience, jwksUri: `${issuer}/jwks`, algorithms: ['RS256', 'ES256'] });
 * ```
 */
export interface AccessTokenVerifierOptions {
  /** The expected `iss`, exactly as the issuer publishes it. */
  readonly issuer: string;
  /** This service's resource URI: the expected `aud`. */
  readonly audience: string;
  /** Where the keys are; default: found through the issuer's metadata. */
  readonly jwksUri?: string | (() => Promise<string>);
  /** Accepted algorithms. Default `['RS256']`; only asymmetric algorithms are allowed. */
  readonly algorithms?: readonly string[];
  /** Leeway for `exp`, `nbf` and `iat`, in seconds. Default 30. */
  readonly clockToleranceSeconds?: number;
  /** JWKS caching (see {@link JwksCacheOptions}). */
  readonly jwks?: Omit<JwksCacheOptions, 'jwksUri' | 'now'>;
  /**
   * Already-verified tokens are remembered (bounded, never past `exp` plus the clock
   * tolerance, the same instant a fresh verification starts refusing them) so that a token
   * used many times is verified once per `maxAgeMs`. `maxEntries: 0` turns the cache off.
   * Default 10,000 entries, 60 s.
   */
  readonly verifiedCache?: { readonly maxEntries?: number; readonly maxAgeMs?: number };
  /**
   * The issuer's revocations (createGuard's `revocations` option polls the revocation feed): a token whose
   * `jti` or `grant_id` is revoked, or whose `client_id` was revoked at or after its `iat`, is
   * refused, from the verified-token cache too.
   */
  readonly revocationList?: RevocationList;
  /** How the proofs of DPoP-bound tokens are checked (RFC 9449; see {@link DpopOptions}). */
  readonly dpop?: DpopOptions;
  /** The clock in milliseconds, for tests. */
  readonly now?: () => number;
}

/** What the verifier asks of a revocation list (see RevocationFeed). */
export interface RevocationList {
  /** `undefined`: cannot tell now (not read yet, or too stale). Synchronous. */
  revoked(claims: RevocableClaims): boolean | undefined;
  /** Makes the list usable, or throws VerifierUnavailable. */
  load(): Promise<void>;
}

/** A function that turns an access token into the caller it speaks for.
 *
 * @example
 * ```ts
 * const { sub, scopes } = await verifier.verify(token);
 * ```
 */
export interface AccessTokenVerifier {
  /**
   * A token sent with the `Bearer` scheme (RFC 6750).
   * @throws InvalidToken; InvalidDpopProof for a DPoP-bound token (RFC 9449 §7.2: it is not a
   *   bearer token); VerifierUnavailable when no keys can be had
   */
  verify(token: string): Promise<Principal>;
  /**
   * A token sent with the `DPoP` scheme (RFC 9449 §7.1), with the proof of `request`. The
   * token is verified as a bearer token is (the verified-token cache included), must be bound
   * to a key (`cnf.jkt`), and the request must carry a fresh, unreplayed proof made with that
   * key for it and for this token: checked on every request, cached token or not.
   *
   * @throws InvalidToken (a bad token, or one not DPoP-bound); InvalidDpopProof; UseDpopNonce;
   *   VerifierUnavailable
   * @example
   * ```ts
   * const principal = await verifier.verifyDpop(token, { proof: req.get('dpop'), method: req.method, url: 'https://orders.example.com/orders' });
   * principal.confirmation?.jkt; // the key the caller proved it holds
   * ```
   */
  verifyDpop(token: string, request: DpopRequest): Promise<Principal>;
  /**
   * The principal of `token` if exactly this token was fully verified before and that verdict
   * is still valid (see `verifiedCache`) and it may be used as a bearer token (it is not
   * DPoP-bound); `undefined` otherwise. Never verifies, never throws: on `undefined`, call
   * {@link AccessTokenVerifier.verify}.
   *
   * @example
   * ```ts
   * const principal = verifier.cached(token) ?? (await verifier.verify(token));
   * ```
   */
  cached(token: string): Principal | undefined;
  /** Look-ups of the verified-token cache so far: a hit served a token without verifying it again (for metrics). */
  cacheCounts(): { readonly hits: number; readonly misses: number };
  /**
   * The principal of a DPoP-bound `token` sent with the DPoP scheme, when everything can be
   * decided at once: the token is in the verified-token cache (and not revoked), and its proof
   * passes `DpopProofVerifier.verifyCached`. `undefined` when it cannot be decided so: call
   * {@link AccessTokenVerifier.verifyDpop}, which decides every case.
   * @throws InvalidDpopProof or UseDpopNonce for a proof refused at once
   */
  cachedDpop(token: string, request: DpopRequest): Principal | undefined;
  readonly keys: JwksCache;
  /** The proof checks of DPoP-bound tokens. */
  readonly dpop: DpopProofVerifier;
}

/**
 * The key a token is bound to (RFC 7800 `cnf`, RFC 9449 §6.1 `jkt`), if any.
 * @throws InvalidToken for a binding this guard cannot check (`cnf` without a `jkt`, such as
 *   an mTLS certificate's `x5t#S256`): such a token is not accepted at all, as bearer or not
 */
function confirmationOf(payload: JWTPayload): Principal['confirmation'] {
  const cnf = payload['cnf'];
  if (cnf === undefined) return undefined;
  const jkt = typeof cnf === 'object' && cnf !== null ? (cnf as Record<string, unknown>)['jkt'] : undefined;
  if (typeof jkt !== 'string' || jkt === '') throw new InvalidToken('the token is bound (cnf) to something other than a DPoP key');
  return { jkt };
}

function principalOf(payload: JWTPayload, issuer: string): Principal {
  const sub = payload.sub ?? '';
  const confirmation = confirmationOf(payload);
  const clientId = typeof payload['client_id'] === 'string' ? payload['client_id'] : undefined;
  // an exchanged token (RFC 8693 §4.1); a malformed chain could hide who acts, so it is refused
  const act = payload['act'] === undefined ? undefined : actorChain(payload['act']);
  if (act === null) throw new InvalidToken('malformed act claim');
  // frozen: the same principal is handed to every request that presents this token
  return frozenPrincipal({
    // RFC 9068 §2.2: for client credentials, sub is the client id
    kind: sub === clientId ? 'client' : 'user',
    sub,
    clientId,
    scopes: scopeList(payload['scope']),
    roles: stringArray(payload['roles']),
    issuer,
    expiresAt: payload.exp === undefined ? undefined : new Date(payload.exp * 1000),
    claims: payload,
    ...(confirmation === undefined ? {} : { confirmation }),
    ...(act === undefined ? {} : { act }),
  });
}

/**
 * Verifies RFC 9068 JWT access tokens locally: signature by a key from the issuer's JWKS,
 * `alg` from the allowlist, `typ` `at+jwt`, `iss` and `aud` pinned, `exp`/`nbf` with a small
 * tolerance; a DPoP-bound token only with the `DPoP` scheme and a valid proof (RFC 9449).
 *
 * @example
 * ```ts
 * const verifier = createAccessTokenVerifier({
 *   issuer: 'https://auth.example.com',
 *   audience: 'https://orders.example.com',
 * });
 * const principal = await verifier.verify(bearerToken);
 * console.log(principal.sub, principal.scopes);
 * ```
 */
export function createAccessTokenVerifier(options: AccessTokenVerifierOptions): AccessTokenVerifier {
  const algorithms = asymmetricAlgorithms(options.algorithms ?? ['RS256'], 'algorithms');
  if (options.jwksUri === undefined) {
    throw new TypeError('jwksUri is required (createGuard discovers it from the issuer)');
  }
  const now = options.now ?? Date.now;
  const tolerance = options.clockToleranceSeconds ?? 30;
  const keys = new JwksCache({ ...options.jwks, jwksUri: options.jwksUri, now });
  const maxAgeMs = options.verifiedCache?.maxAgeMs ?? 60_000;
  const verified = new VerdictCache<Principal>(options.verifiedCache?.maxEntries ?? 10_000);
  const dpop = createDpopProofVerifier({ ...options.dpop, now });
  let hits = 0;
  let misses = 0;

  async function verifyUncached(token: string): Promise<Principal> {
    // also guarantees that a cached token is a b64token (RFC 6750 §2.1; credentials.ts relies on it)
    if (!COMPACT_JWS.test(token)) throw new InvalidToken('not a compact JWS');
    let header;
    try {
      header = decodeProtectedHeader(token);
    } catch (error) {
      throw new InvalidToken('not a JWS', { cause: error });
    }
    const pointer = KEY_POINTERS.find((name) => header[name] !== undefined);
    if (pointer !== undefined) throw new InvalidToken(`token header carries "${pointer}"`);
    try {
      const { payload } = await jwtVerify(token, keys.resolver, {
        issuer: options.issuer,
        audience: options.audience,
        algorithms,
        typ: 'at+jwt',
        clockTolerance: tolerance,
        currentDate: new Date(now()),
        requiredClaims: ['exp', 'iat', 'sub', 'client_id', 'jti'],
      });
      return principalOf(payload, options.issuer);
    } catch (error) {
      if (error instanceof GuardError) throw error;
      const code = error instanceof errors.JOSEError ? error.code : 'ERR_UNKNOWN';
      throw new InvalidToken(`${code}: ${(error as Error).message}`, { cause: error });
    }
  }

  const { revocationList: revocations } = options;

  /** Refuses a revoked token (waiting for the list when it cannot tell yet). */
  async function refuseRevoked(principal: Principal): Promise<void> {
    if (revocations === undefined) return;
    let revoked = revocations.revoked(principal.claims);
    if (revoked === undefined) {
      await revocations.load();
      revoked = revocations.revoked(principal.claims);
      if (revoked === undefined) throw new VerifierUnavailable('revocation list unavailable');
    }
    if (revoked) throw new InvalidToken('token revoked');
  }

  /** The token's principal, from the cache or verified now (and then cached), whatever the scheme. */
  async function verifiedPrincipal(token: string): Promise<Principal> {
    const hit = verified.get(token, now());
    if (hit !== undefined) {
      hits += 1;
      await refuseRevoked(hit);
      return hit;
    }
    misses += 1;
    const principal = await verifyUncached(token);
    await refuseRevoked(principal);
    const expiresAt = principal.expiresAt?.getTime();
    if (expiresAt !== undefined) {
      // never past the instant a fresh verification would refuse the token (exp + tolerance)
      const at = now();
      verified.set(token, principal, Math.min(expiresAt + tolerance * 1000, at + maxAgeMs), at);
    }
    return principal;
  }

  return {
    keys,
    dpop,
    cached(token) {
      const hit = verified.get(token, now());
      // a DPoP-bound token, a revoked one, or one that cannot be checked now takes the full path (which refuses it)
      if (hit === undefined || hit.confirmation !== undefined) return undefined;
      if (revocations !== undefined && revocations.revoked(hit.claims) !== false) return undefined;
      // counted only when served here: otherwise the full path looks the token up again and counts it
      hits += 1;
      return hit;
    },
    cachedDpop(token, request) {
      const hit = verified.get(token, now());
      if (hit?.confirmation === undefined) return undefined;
      if (revocations !== undefined && revocations.revoked(hit.claims) !== false) return undefined;
      if (dpop.verifyCached(request, token, hit.confirmation.jkt) !== true) return undefined;
      hits += 1;
      return hit;
    },
    cacheCounts: () => ({ hits, misses }),
    async verify(token) {
      const principal = await verifiedPrincipal(token);
      // RFC 9449 §7.2: a DPoP-bound token is not a bearer token, whoever presents it
      if (principal.confirmation !== undefined) throw new InvalidDpopProof('a DPoP-bound token sent with the Bearer scheme');
      return principal;
    },
    async verifyDpop(token, request) {
      const principal = await verifiedPrincipal(token);
      if (principal.confirmation === undefined) throw new InvalidToken('a token that is not DPoP-bound sent with the DPoP scheme');
      // the proof every time: a cached token proves nothing about who sends it now
      await dpop.verify(request, token, principal.confirmation.jkt);
      return principal;
    },
  };
}
