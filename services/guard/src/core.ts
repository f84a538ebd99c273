import type { ApiKeyResolver } from './api-key.js';
import { cachedPrincipal, requestCredentials, usesDpopScheme, type Credentials, type RequestHeaders, type RequestReader } from './credentials.js';
import {
  CredentialsMissing,
  GuardError,
  InsufficientRole,
  InsufficientScope,
  InvalidDpopProof,
  UseDpopNonce,
  VerifierUnavailable,
  type GuardErrorCode,
} from './errors.js';
import type { Principal } from './principal.js';
import type { AccessTokenVerifier } from './verify-access-token.js';

/*
 * The framework-neutral core of the guard: it turns a request (read through a RequestReader)
 * into a principal or a refusal, and a refusal into its answer (status, headers, body). The
 * express middleware (middleware.ts), the Fastify plugin (fastify.ts) and the plain-data API
 * (`Guard.decide`) are thin adapters over it: they only read their framework's request and
 * write its reply. Nothing here knows a framework.
 */

/**
 * A request as plain data, for the framework-neutral API (`guard.decide`, `guard.authenticateRequest`).
 *
 * @example
 * ```ts
 * const outcome = await guard.authenticateRequest({ method: 'GET', url: '/orders?page=2', headers: { authorization: `Bearer ${jwt}` } });
 * ```
 */
export interface GuardRequest {
  readonly method: string;
  /** The request target as the service received it: the path and any query (`/orders?page=2`). */
  readonly url: string;
  /** Header names in lower case, as node's `http` module gives them. */
  readonly headers: RequestHeaders;
  /**
   * The scheme and host (and any path prefix) the client addressed, for DPoP proofs' `htu`
   * (RFC 9449 §4.3): `https://api.example.com`. Default: the guard's `publicUrl`, else
   * `http://` and the `Host` header.
   */
  readonly baseUrl?: string;
}

/** What a route requires beyond a valid credential (`guard.decide`'s second argument). */
export interface Requirements {
  /** Also accept an API key in the `api_key` query parameter (off by default: URLs leak into logs). */
  readonly apiKeyInQuery?: boolean;
  /** Every one of these scopes. */
  readonly scopes?: readonly string[];
  /** At least one of these roles. */
  readonly roles?: readonly string[];
}

/** A request the guard lets through: its principal, and the headers to add to the answer (a fresh `DPoP-Nonce`, RFC 9449 §9). */
export interface Accepted {
  readonly ok: true;
  readonly principal: Principal;
  readonly headers: Readonly<Record<string, string>>;
}

/**
 * A request the guard refuses, and the whole answer to give it: `status`; `headers` in the
 * order to set them (`WWW-Authenticate` per RFC 6750 §3 or RFC 9449 §7.1, or `Retry-After` for
 * 503; `DPoP-Nonce` for `use_dpop_nonce`; `Cache-Control: no-store`); the JSON `body`.
 * `error` is why, for the log (its `reason` is never sent).
 */
export interface Refusal {
  readonly ok: false;
  readonly status: 400 | 401 | 403 | 503;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: { readonly error: string; readonly error_description: string };
  readonly error: GuardError;
}

/** Where the guard writes why it refused a request (the client never sees the reason).
 *
 * @example
 * ```ts
 * const guard = createGuard({ issuer, audience, logger: pino() }); // pino's warn(obj, msg) fits
 * ```
 */
export interface GuardLogger {
  warn(details: Record<string, unknown>, message: string): void;
}

/**
 * A refusal answered with the DPoP authentication scheme (RFC 9449 §7.1) rather than Bearer:
 * for a request that used it, or whose DPoP-bound token came without a valid proof.
 */
export interface DpopChallenge {
  /** The proof algorithms the service accepts (the challenge's `algs`). */
  readonly algs: readonly string[];
}

/** An auth-param value as a quoted-string (RFC 9110 §11.2), without the characters that would end or escape it. */
const quote = (value: string) => `"${value.replace(/["\\]/gu, '')}"`;

/**
 * The `WWW-Authenticate` challenge of a refusal (RFC 6750 §3, or RFC 9449 §7.1 with `algs`
 * for the DPoP scheme): no error code when no credential was sent (RFC 6750 §3.1).
 */
function challenge(error: GuardError, realm: string, dpop: DpopChallenge | undefined): string {
  const params = [`realm=${quote(realm)}`];
  if (error.oauthError !== undefined) {
    params.push(`error=${quote(error.oauthError)}`, `error_description=${quote(error.publicDescription)}`);
  }
  if (error instanceof InsufficientScope) params.push(`scope=${quote(error.requiredScopes.join(' '))}`);
  if (dpop !== undefined) params.push(`algs=${quote(dpop.algs.join(' '))}`);
  return `${dpop === undefined ? 'Bearer' : 'DPoP'} ${params.join(', ')}`;
}

/**
 * The answer to a refusal: the status of `error`; a `WWW-Authenticate` challenge naming `realm`
 * (`Bearer`, or `DPoP` with `dpop`) for 400, 401 and 403, `Retry-After` for 503 instead; the
 * nonce to use in `DPoP-Nonce` for `use_dpop_nonce` (RFC 9449 §9); `Cache-Control: no-store`;
 * and the body `{ error, error_description }`, whose `error` is `unauthorized` when RFC 6750
 * has no code for the refusal (no credential sent).
 *
 * @example
 * ```ts
 * const { status, headers, body } = refusalOf(new InvalidToken('expired'), 'https://orders.example.com');
 * ```
 */
export function refusalOf(error: GuardError, realm: string, dpop?: DpopChallenge): Refusal {
  const headers: Record<string, string> = {};
  if (error.status === 503) headers['Retry-After'] = '5';
  else headers['WWW-Authenticate'] = challenge(error, realm, dpop);
  if (error instanceof UseDpopNonce) headers['DPoP-Nonce'] = error.nonce;
  headers['Cache-Control'] = 'no-store';
  return { ok: false, status: error.status, headers, body: { error: error.oauthError ?? 'unauthorized', error_description: error.publicDescription }, error };
}

/** A rule about an authenticated principal: the refusal, or `undefined` to let the request through. */
export type Check = (principal: Principal) => GuardError | undefined;

export const hasEveryScope =
  (scopes: readonly string[]): Check =>
  (principal) => {
    for (const scope of scopes) {
      if (!principal.scopes.includes(scope)) {
        const missing = scopes.filter((required) => !principal.scopes.includes(required));
        return new InsufficientScope(scopes, `missing scope ${missing.join(' ')}`);
      }
    }
    return undefined;
  };

export const hasAnyRole =
  (roles: readonly string[]): Check =>
  (principal) => {
    for (const role of roles) if (principal.roles.includes(role)) return undefined;
    return new InsufficientRole(roles, `has roles [${principal.roles.join(', ')}]`);
  };

/** The checks of `requirements`, in one (undefined when there are none). */
export function checkOf(requirements: Requirements): Check | undefined {
  const checks: Check[] = [];
  if (requirements.scopes !== undefined && requirements.scopes.length > 0) checks.push(hasEveryScope(requirements.scopes));
  if (requirements.roles !== undefined && requirements.roles.length > 0) checks.push(hasAnyRole(requirements.roles));
  if (checks.length === 0) return undefined;
  return (principal) => {
    for (const check of checks) {
      const refusal = check(principal);
      if (refusal !== undefined) return refusal;
    }
    return undefined;
  };
}

/** The guard's counters since it was created (a snapshot: `guard.stats()`), for a service's metrics. */
export interface GuardStats {
  readonly requests: {
    /** Requests whose credential was accepted (one per request; a request refused later for scope or role counts here and under `refused`). */
    readonly accepted: number;
    /** Refusals by reason: one per refused request. */
    readonly refused: Readonly<Partial<Record<GuardErrorCode, number>>>;
  };
  /** Look-ups of bearer and DPoP-bound tokens in the verified-token cache. */
  readonly verifiedTokenCache: { readonly hits: number; readonly misses: number };
  /** Requests for the issuer's JWKS. */
  readonly jwksFetches: { readonly succeeded: number; readonly failed: number };
  /** Polls of the revocation feed (all zero when it is off). */
  readonly revocationFeedPolls: { readonly succeeded: number; readonly failed: number };
}

/** The parts of the core (`createGuard` builds them). */
export interface CoreParts {
  readonly verifier: AccessTokenVerifier;
  readonly apiKeys: ApiKeyResolver | undefined;
  /** Turns the credentials of a request into its principal, or throws the refusal. */
  readonly authenticate: (credentials: Credentials) => Promise<Principal>;
  /** `realm` of the WWW-Authenticate challenge. */
  readonly realm: string;
  /** The service's public base URL behind a proxy: what DPoP proofs' `htu` name. */
  readonly publicUrl: string | undefined;
  readonly logger: GuardLogger | undefined;
}

/** The core, for the adapters: every function takes the adapter's reader and its request object. */
export interface Core {
  /** A cached credential's principal, synchronously (accepted), or undefined for the full path. @throws GuardError */
  cached<R>(reader: RequestReader<R>, req: R, apiKeyInQuery: boolean): Principal | undefined;
  /** The full path: every credential rule, then verification or introspection (cache included); the principal is accepted. @throws GuardError */
  authenticate<R>(reader: RequestReader<R>, req: R, apiKeyInQuery: boolean): Promise<Principal>;
  /** The answer to `error` (anything thrown: a non-GuardError is a 503), logged and counted. */
  refuse<R>(reader: RequestReader<R>, req: R, error: unknown): Refusal;
  /** A fresh `DPoP-Nonce` to send with an accepted DPoP request (RFC 9449 §9), when the service asks for nonces. */
  nonceFor(principal: Principal): string | undefined;
  /** The plain-data API: `Accepted` or `Refusal`, synchronously when the credential is cached. */
  decide(request: GuardRequest, requirements?: Requirements): Accepted | Refusal | Promise<Accepted | Refusal>;
  /** Requests accepted and refused so far (the `requests` of {@link GuardStats}). */
  counts(): GuardStats['requests'];
}

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

/** The request target without its query. */
const pathOf = (target: string) => {
  const query = target.indexOf('?');
  return query === -1 ? target : target.slice(0, query);
};

/** Reads a {@link GuardRequest}. */
const plainReader: RequestReader<GuardRequest> = {
  headers: (req) => req.headers,
  method: (req) => req.method,
  path: (req) => pathOf(req.url),
  url: (req, publicUrl) => {
    const base = req.baseUrl?.replace(/\/$/u, '') ?? publicUrl;
    const host = req.headers['host'];
    return `${base ?? `http://${typeof host === 'string' ? host : ''}`}${pathOf(req.url)}`;
  },
  queryApiKey: (req) => {
    const query = req.url.indexOf('?');
    if (query === -1) return undefined;
    const values = new URLSearchParams(req.url.slice(query + 1)).getAll('api_key');
    return values.length === 0 ? undefined : values.length === 1 ? values[0] : values;
  },
};

/**
 * Builds the core of a guard.
 *
 * @example
 * ```ts
 * const core = createCore({ verifier, apiKeys, authenticate, realm: audience, publicUrl: undefined, logger });
 * const outcome = await core.decide({ method: 'GET', url: '/orders', headers }, { scopes: ['orders:read'] });
 * ```
 */
export function createCore(parts: CoreParts): Core {
  const { verifier, apiKeys, authenticate, realm, publicUrl, logger } = parts;
  const dpopChallenge = { algs: verifier.dpop.algorithms };
  const { nonces } = verifier.dpop;
  let accepted = 0;
  const refused: Partial<Record<GuardErrorCode, number>> = {};

  const core: Core = {
    cached(reader, req, apiKeyInQuery) {
      const principal = cachedPrincipal(reader, req, apiKeyInQuery, verifier, apiKeys, publicUrl);
      if (principal !== undefined) accepted += 1;
      return principal;
    },
    async authenticate(reader, req, apiKeyInQuery) {
      const principal = await authenticate(requestCredentials(reader, req, apiKeyInQuery, publicUrl));
      accepted += 1;
      return principal;
    },
    refuse(reader, req, error) {
      const guardError = error instanceof GuardError ? error : new VerifierUnavailable('unexpected verification error', { cause: error });
      refused[guardError.code] = (refused[guardError.code] ?? 0) + 1;
      logger?.warn({ code: guardError.code, reason: guardError.reason, method: reader.method(req), path: reader.path(req) }, 'request refused by guard');
      // RFC 9449 §7.1: the DPoP scheme for a request that used it, and for a bound token without its proof
      const authorization = reader.headers(req)['authorization'];
      const dpop =
        guardError instanceof InvalidDpopProof || guardError instanceof UseDpopNonce || usesDpopScheme(typeof authorization === 'string' ? authorization : undefined);
      return refusalOf(guardError, realm, dpop ? dpopChallenge : undefined);
    },
    nonceFor(principal) {
      return nonces !== undefined && principal.confirmation !== undefined ? nonces.current() : undefined;
    },
    decide(request, requirements = {}) {
      const apiKeyInQuery = requirements.apiKeyInQuery === true;
      const check = checkOf(requirements);
      const settle = (principal: Principal): Accepted | Refusal => {
        const refusal = check?.(principal);
        if (refusal !== undefined) return core.refuse(plainReader, request, refusal);
        const nonce = core.nonceFor(principal);
        return { ok: true, principal, headers: nonce === undefined ? NO_HEADERS : { 'DPoP-Nonce': nonce } };
      };
      let principal;
      try {
        principal = core.cached(plainReader, request, apiKeyInQuery);
      } catch (error) {
        return core.refuse(plainReader, request, error);
      }
      if (principal !== undefined) return settle(principal);
      return core.authenticate(plainReader, request, apiKeyInQuery).then(settle, (error: unknown) => core.refuse(plainReader, request, error));
    },
    counts: () => ({ accepted, refused: { ...refused } }),
  };
  return core;
}

/** The CredentialsMissing refusal of an authorization check that found no principal. */
export const noPrincipal = () => new CredentialsMissing('no principal');
