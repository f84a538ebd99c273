/** Stable codes for every way the guard can refuse a request.
 *
 * @example
 * ```ts
 * if (error instanceof GuardError && error.code === 'ERR_INVALID_TOKEN') metrics.invalidTokens.inc();
 * ```
 */
export type GuardErrorCode =
  | 'ERR_CREDENTIALS_MISSING'
  | 'ERR_INVALID_REQUEST'
  | 'ERR_INVALID_TOKEN'
  | 'ERR_INSUFFICIENT_SCOPE'
  | 'ERR_INSUFFICIENT_ROLE'
  | 'ERR_INVALID_DPOP_PROOF'
  | 'ERR_USE_DPOP_NONCE'
  | 'ERR_VERIFIER_UNAVAILABLE';

/**
 * Base class of the guard's refusals. `status` and `oauthError` are what the client sees;
 * `message` and `reason` are for the service's log only.
 *
 * @example
 * ```ts
 * try {
 *   await verifier.verify(token);
 * } catch (error) {
 *   if (error instanceof GuardError) logger.warn({ code: error.code, reason: error.reason }, 'refused');
 * }
 * ```
 */
export abstract class GuardError extends Error {
  abstract readonly code: GuardErrorCode;
  abstract readonly status: 400 | 401 | 403 | 503;
  /** The RFC 6750 error code, when one applies. */
  abstract readonly oauthError: string | undefined;
  /** What the client is told. */
  abstract readonly publicDescription: string;

  constructor(
    /** Why, for the log (never sent to the client). */
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(reason, options);
  }
}

/**
 * No bearer token or API key was sent (RFC 6750 §3.1: 401 without an error code).
 *
 * @example
 * ```ts
 * if (!header) throw new CredentialsMissing('no Authorization or X-API-Key header');
 * ```
 */
export class CredentialsMissing extends GuardError {
  override name = 'CredentialsMissing';
  readonly code = 'ERR_CREDENTIALS_MISSING';
  readonly status = 401;
  readonly oauthError = undefined;
  readonly publicDescription = 'a bearer token or an API key is required';
}

/**
 * The request is malformed, e.g. it carries two different credentials (RFC 6750 §3.1).
 *
 * @example
 * ```ts
 * throw new InvalidRequest('both a bearer token and an API key were sent');
 * ```
 */
export class InvalidRequest extends GuardError {
  override name = 'InvalidRequest';
  readonly code = 'ERR_INVALID_REQUEST';
  readonly status = 400;
  readonly oauthError = 'invalid_request';
  readonly publicDescription = 'send exactly one credential: a bearer token or an API key';
}

/**
 * The credential is not valid here: bad signature, expired, wrong issuer or audience, not an
 * access token, revoked or unknown API key… (RFC 6750 §3.1 `invalid_token`).
 *
 * @example
 * ```ts
 * throw new InvalidToken('token expired');
 * ```
 */
export class InvalidToken extends GuardError {
  override name = 'InvalidToken';
  readonly code = 'ERR_INVALID_TOKEN';
  readonly status = 401;
  readonly oauthError = 'invalid_token';
  readonly publicDescription = 'the access token or API key is invalid';
}

/**
 * The credential is valid but lacks a scope the route needs (RFC 6750 §3.1).
 *
 * @example
 * ```ts
 * throw new InsufficientScope(['orders:write'], 'token has orders:read');
 * ```
 */
export class InsufficientScope extends GuardError {
  override name = 'InsufficientScope';
  readonly code = 'ERR_INSUFFICIENT_SCOPE';
  readonly status = 403;
  readonly oauthError = 'insufficient_scope';
  readonly publicDescription: string;

  constructor(
    /** The scopes the route requires, all of them. */
    readonly requiredScopes: readonly string[],
    reason: string,
  ) {
    super(reason);
    this.publicDescription = `requires scope ${requiredScopes.join(' ')}`;
  }
}

/**
 * The credential is valid but carries none of the roles the route accepts. Answered like an
 * insufficient scope (403, `insufficient_scope`), the only RFC 6750 code for a forbidden request.
 *
 * @example
 * ```ts
 * throw new InsufficientRole(['admin'], 'principal has roles []');
 * ```
 */
export class InsufficientRole extends GuardError {
  override name = 'InsufficientRole';
  readonly code = 'ERR_INSUFFICIENT_ROLE';
  readonly status = 403;
  readonly oauthError = 'insufficient_scope';
  readonly publicDescription: string;

  constructor(
    /** The roles the route accepts, any one of them. */
    readonly acceptedRoles: readonly string[],
    reason: string,
  ) {
    super(reason);
    this.publicDescription = `requires role ${acceptedRoles.join(' or ')}`;
  }
}

/**
 * A DPoP-bound access token came without a valid DPoP proof for this request and for the key
 * it is bound to: no proof, a proof that fails any check of RFC 9449 §4.3 (its type, algorithm,
 * key, signature, method, URL, age, access token hash, or a `jti` already seen), a proof by
 * another key than the token's `cnf.jkt`, or the token sent with the `Bearer` scheme (RFC 9449
 * §7.2). 401 `invalid_dpop_proof`, always with the DPoP challenge (RFC 9449 §7.1).
 *
 * @example
 * ```ts
 * throw new InvalidDpopProof('htm "POST" is not the request method GET');
 * ```
 */
export class InvalidDpopProof extends GuardError {
  override name = 'InvalidDpopProof';
  readonly code = 'ERR_INVALID_DPOP_PROOF';
  readonly status = 401;
  readonly oauthError = 'invalid_dpop_proof';
  readonly publicDescription = 'a DPoP-bound access token needs the DPoP scheme and a valid DPoP proof of its key for this request';
}

/**
 * The service asks for server nonces (RFC 9449 §9) and the proof carries none, or one that is
 * not (or no longer) valid: 401 `use_dpop_nonce` with the nonce to use in `DPoP-Nonce`.
 *
 * @example
 * ```ts
 * throw new UseDpopNonce(nonces.current(), 'the proof has no nonce');
 * ```
 */
export class UseDpopNonce extends GuardError {
  override name = 'UseDpopNonce';
  readonly code = 'ERR_USE_DPOP_NONCE';
  readonly status = 401;
  readonly oauthError = 'use_dpop_nonce';
  readonly publicDescription = 'the DPoP proof must carry the nonce of the DPoP-Nonce header';

  constructor(
    /** The nonce the client is to put in its next proof (the answer's `DPoP-Nonce` header). */
    readonly nonce: string,
    reason: string,
  ) {
    super(reason);
  }
}

/**
 * The credential could not be checked: no usable keys (the issuer has been unreachable since
 * start, or for longer than the stale-if-error window) or introspection failed. 503: it is
 * not the caller's fault.
 *
 * @example
 * ```ts
 * throw new VerifierUnavailable('JWKS fetch failed: ECONNREFUSED');
 * ```
 */
export class VerifierUnavailable extends GuardError {
  override name = 'VerifierUnavailable';
  readonly code = 'ERR_VERIFIER_UNAVAILABLE';
  readonly status = 503;
  readonly oauthError = 'temporarily_unavailable';
  readonly publicDescription = 'the credential cannot be checked right now; retry later';
}

/**
 * The issuer answered, but with metadata the guard must not use: another `issuer`, a `jwks_uri`
 * or `introspection_endpoint` off the issuer's origin, no metadata at all. A configuration
 * error (usually ISSUER), not an outage: retrying will not help, so a service fails at start
 * (`Guard.ready`). Requests that meet it are still answered 503, like any unverifiable credential.
 *
 * @example
 * ```ts
 * try { await guard.ready(); } catch (error) { if (error instanceof IssuerMetadataRefused) process.exit(1); }
 * ```
 */
export class IssuerMetadataRefused extends VerifierUnavailable {
  override name = 'IssuerMetadataRefused';
}
