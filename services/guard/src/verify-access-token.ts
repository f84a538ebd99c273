import { decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';

import { GuardError, InvalidToken, VerifierUnavailable } from './errors.js';
import { JwksCache, type JwksCacheOptions } from './jwks-cache.js';
import { actorChain, frozenPrincipal, scopeList, stringArray, type Principal } from './principal.js';
import type { RevocableClaims } from './revocation-feed.js';
import { VerdictCache } from './verified-cache.js';

const ASYMMETRIC = /^(RS|PS|ES)(256|384|512)$|^EdDSA$|^Ed25519$/u;
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
  /** @throws InvalidToken, or VerifierUnavailable when no keys can be had */
  verify(token: string): Promise<Principal>;
  /**
   * The principal of `token` if exactly this token was fully verified before and that verdict
   * is still valid (see `verifiedCache`); `undefined` otherwise. Never verifies, never throws:
   * on `undefined`, call {@link AccessTokenVerifier.verify}.
   *
   * @example
   * ```ts
   * const principal = verifier.cached(token) ?? (await verifier.verify(token));
   * ```
   */
  cached(token: string): Principal | undefined;
  readonly keys: JwksCache;
}

function principalOf(payload: JWTPayload, issuer: string): Principal {
  const sub = payload.sub ?? '';
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
    ...(act === undefined ? {} : { act }),
  });
}

/**
 * Verifies RFC 9068 JWT access tokens locally: signature by a key from the issuer's JWKS,
 * `alg` from the allowlist, `typ` `at+jwt`, `iss` and `aud` pinned, `exp`/`nbf` with a small
 * tolerance.
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
  const algorithms = [...(options.algorithms ?? ['RS256'])];
  const refused = algorithms.find((alg) => !ASYMMETRIC.test(alg));
  if (algorithms.length === 0 || refused !== undefined) {
    throw new TypeError(`algorithms must be asymmetric JWS algorithms (refused: ${refused ?? 'empty list'})`);
  }
  if (options.jwksUri === undefined) {
    throw new TypeError('jwksUri is required (createGuard discovers it from the issuer)');
  }
  const now = options.now ?? Date.now;
  const tolerance = options.clockToleranceSeconds ?? 30;
  const keys = new JwksCache({ ...options.jwks, jwksUri: options.jwksUri, now });
  const maxAgeMs = options.verifiedCache?.maxAgeMs ?? 60_000;
  const verified = new VerdictCache<Principal>(options.verifiedCache?.maxEntries ?? 10_000);

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

  return {
    keys,
    cached(token) {
      const hit = verified.get(token, now());
      // a revoked token, or one that cannot be checked now, takes the full path (which refuses it)
      return hit === undefined || (revocations !== undefined && revocations.revoked(hit.claims) !== false) ? undefined : hit;
    },
    async verify(token) {
      const hit = verified.get(token, now());
      if (hit !== undefined) {
        await refuseRevoked(hit);
        return hit;
      }
      const principal = await verifyUncached(token);
      await refuseRevoked(principal);
      const expiresAt = principal.expiresAt?.getTime();
      if (expiresAt !== undefined) {
        // never past the instant a fresh verification would refuse the token (exp + tolerance)
        const at = now();
        verified.set(token, principal, Math.min(expiresAt + tolerance * 1000, at + maxAgeMs), at);
      }
      return principal;
    },
  };
}
