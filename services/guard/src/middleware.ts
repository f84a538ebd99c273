import type { NextFunction, Request, RequestHandler, Response } from 'express';

import type { ApiKeyResolver } from './api-key.js';
import { cachedPrincipal, requestCredentials, usesDpopScheme, type Credentials } from './credentials.js';
import { CredentialsMissing, GuardError, InsufficientRole, InsufficientScope, InvalidDpopProof, UseDpopNonce, VerifierUnavailable } from './errors.js';
import type { Principal } from './principal.js';
import { writeRefusal } from './refusal.js';
import type { AccessTokenVerifier } from './verify-access-token.js';

declare module 'express-serve-static-core' {
  interface Request {
    /** The authenticated caller, set by the guard's middleware. */
    auth?: Principal;
  }
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
 * @example
 * ```ts
 * app.get('/export.csv', guard.requireAuth({ apiKeyInQuery: true }), guard.requireScope('orders:read'), exportCsv);
 * ```
 */
export interface RequireAuthOptions {
  /** Also accept an API key in the `api_key` query parameter (off by default: URLs leak into logs). */
  readonly apiKeyInQuery?: boolean;
}

/** The express middleware of a guard.
 *
 * @example
 * ```ts
 * app.post('/orders', guard.requireScope('orders:write'), (req, res) => res.json(place(req.body, req.auth!.sub)));
 * ```
 */
export interface GuardMiddleware {
  /** Authenticates the request and sets `req.auth`. */
  requireAuth(options?: RequireAuthOptions): RequestHandler;
  /** Requires every one of `scopes` (authenticating first when needed). */
  requireScope(...scopes: string[]): RequestHandler;
  /** Requires at least one of `roles` (authenticating first when needed). */
  requireRole(...roles: string[]): RequestHandler;
}

/** What the middleware is made of (`createGuard` builds it). */
export interface MiddlewareParts {
  readonly verifier: AccessTokenVerifier;
  readonly apiKeys: ApiKeyResolver | undefined;
  /** Turns the credentials of a request into its principal, or throws the refusal. */
  readonly authenticate: (credentials: Credentials) => Promise<Principal>;
  /** `realm` of the WWW-Authenticate challenge. */
  readonly realm: string;
  /** The service's public base URL behind a proxy: what DPoP proofs' `htu` name (credentials.ts `requestUrl`). */
  readonly publicUrl?: string | undefined;
  readonly logger: GuardLogger | undefined;
}

/** A rule about an authenticated principal: the refusal, or `undefined` to let the request through. */
type Check = (principal: Principal) => GuardError | undefined;

const hasEveryScope =
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

const hasAnyRole =
  (roles: readonly string[]): Check =>
  (principal) => {
    for (const role of roles) if (principal.roles.includes(role)) return undefined;
    return new InsufficientRole(roles, `has roles [${principal.roles.join(', ')}]`);
  };

/**
 * The guard's express middleware: a request whose credential is already cached continues
 * synchronously (the cached path of credentials.ts); any other goes through the full path, and
 * every refusal is logged and answered by `writeRefusal`.
 *
 * @example
 * ```ts
 * const { requireScope } = guardMiddleware({ verifier, apiKeys: undefined, authenticate, realm: audience, logger });
 * app.get('/orders', requireScope('orders:read'), listOrders);
 * ```
 */
export function guardMiddleware(parts: MiddlewareParts): GuardMiddleware {
  const { verifier, apiKeys, authenticate, realm, publicUrl, logger } = parts;
  const dpopChallenge = { algs: verifier.dpop.algorithms };
  const { nonces } = verifier.dpop;

  const fail = (req: Request, res: Response, error: unknown) => {
    const guardError = error instanceof GuardError ? error : new VerifierUnavailable('unexpected verification error', { cause: error });
    logger?.warn({ code: guardError.code, reason: guardError.reason, method: req.method, path: req.path }, 'request refused by guard');
    // RFC 9449 §7.1: the DPoP scheme for a request that used it, and for a bound token without its proof
    const dpop = guardError instanceof InvalidDpopProof || guardError instanceof UseDpopNonce || usesDpopScheme(req);
    writeRefusal(res, guardError, realm, dpop ? dpopChallenge : undefined);
  };

  /** The full path: every credential rule, then verification or introspection (cache included). */
  async function authenticateRequest(req: Request, res: Response, next: NextFunction, apiKeyInQuery: boolean): Promise<void> {
    try {
      req.auth = await authenticate(requestCredentials(req, apiKeyInQuery, publicUrl));
    } catch (error) {
      fail(req, res, error);
      return;
    }
    // RFC 9449 §9: a fresh nonce with every answer to a proof, so that the client's next one stays valid
    if (nonces !== undefined && req.auth.confirmation !== undefined) res.setHeader('DPoP-Nonce', nonces.current());
    next();
  }

  function requireAuth(authOptions: RequireAuthOptions = {}): RequestHandler {
    const apiKeyInQuery = authOptions.apiKeyInQuery === true;
    return (req: Request, res: Response, next: NextFunction) => {
      // a cached credential continues synchronously: no promise, no microtask turn
      let principal;
      try {
        principal = cachedPrincipal(req, apiKeyInQuery, verifier, apiKeys, publicUrl);
      } catch (error) {
        fail(req, res, error);
        return undefined;
      }
      if (principal === undefined) return authenticateRequest(req, res, next, apiKeyInQuery);
      req.auth = principal;
      if (nonces !== undefined && principal.confirmation !== undefined) res.setHeader('DPoP-Nonce', nonces.current());
      next();
      return undefined;
    };
  }

  /** Runs `check` on the principal, authenticating first when no earlier middleware did. */
  function authorize(check: Check): RequestHandler {
    const authenticateFirst = requireAuth();
    const decide = (principal: Principal | undefined, req: Request, res: Response, next: NextFunction) => {
      const refusal = principal === undefined ? new CredentialsMissing('no principal') : check(principal);
      if (refusal === undefined) next();
      else fail(req, res, refusal);
    };
    return (req, res, next) => {
      const principal = req.auth;
      if (principal !== undefined) {
        decide(principal, req, res, next);
        return undefined;
      }
      return authenticateFirst(req, res, () => decide(req.auth, req, res, next));
    };
  }

  return {
    requireAuth,
    requireScope: (...scopes) => authorize(hasEveryScope(scopes)),
    requireRole: (...roles) => authorize(hasAnyRole(roles)),
  };
}
