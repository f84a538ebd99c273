import type { NextFunction, Request, RequestHandler, Response } from 'express';

import { hasAnyRole, hasEveryScope, noPrincipal, type Check, type Core } from './core.js';
import type { RequestReader } from './credentials.js';
import { coreOf, createCoreGuard, extendGuard, type CoreGuard, type GuardOptions } from './guard.js';
import type { Principal } from './principal.js';
import { sendRefusal } from './refusal.js';

export type { GuardLogger } from './core.js';

declare module 'express-serve-static-core' {
  interface Request {
    /** The authenticated caller, set by the guard's middleware. */
    auth?: Principal;
  }
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

/**
 * The URL a client addressed the request to, as its proof's `htu` names it (RFC 9449 §4.3
 * step 9: no query, no fragment). Behind a proxy that changes the scheme, host or path, it is
 * `publicUrl` (the service's public base URL) followed by the path the service received;
 * otherwise the request's own: its scheme and `Host` as express reads them (`trust proxy`
 * decides whether X-Forwarded-Proto and -Host count) and its path.
 *
 * @example
 * ```ts
 * requestUrl(req, 'https://api.example.com/orders-service'); // 'https://api.example.com/orders-service/orders' for GET /orders?x=1
 * ```
 */
export function requestUrl(req: Request, publicUrl: string | undefined): string {
  const target = req.originalUrl;
  const query = target.indexOf('?');
  const path = query === -1 ? target : target.slice(0, query);
  return publicUrl === undefined ? `${req.protocol}://${req.host}${path}` : `${publicUrl}${path}`;
}

/**
 * How the core reads an express request. Reads `req` as few times as it can: behind express 5,
 * every request object has a hidden class of its own, so each property read misses V8's inline
 * caches. `req.query` parses the query anew on every read: only read when there is one.
 */
export const expressReader: RequestReader<Request> = {
  headers: (req) => req.headers,
  method: (req) => req.method,
  path: (req) => req.path,
  url: requestUrl,
  queryApiKey: (req) => (req.url.includes('?') ? req.query['api_key'] : undefined),
};

/**
 * The guard's express middleware over its core (core.ts): a request whose credential is
 * already cached continues synchronously (no promise, no microtask turn); any other goes
 * through the full path, and every refusal is answered as the core words it.
 *
 * @example
 * ```ts
 * const { requireScope } = guardMiddleware(core);
 * app.get('/orders', requireScope('orders:read'), listOrders);
 * ```
 */
export function guardMiddleware(core: Core): GuardMiddleware {
  const fail = (req: Request, res: Response, error: unknown) => sendRefusal(res, core.refuse(expressReader, req, error));

  /** The full path: every credential rule, then verification or introspection (cache included). */
  async function authenticateRequest(req: Request, res: Response, next: NextFunction, apiKeyInQuery: boolean): Promise<void> {
    try {
      req.auth = await core.authenticate(expressReader, req, apiKeyInQuery);
    } catch (error) {
      fail(req, res, error);
      return;
    }
    // RFC 9449 §9: a fresh nonce with every answer to a proof, so that the client's next one stays valid
    const nonce = core.nonceFor(req.auth);
    if (nonce !== undefined) res.setHeader('DPoP-Nonce', nonce);
    next();
  }

  function requireAuth(authOptions: RequireAuthOptions = {}): RequestHandler {
    const apiKeyInQuery = authOptions.apiKeyInQuery === true;
    return (req: Request, res: Response, next: NextFunction) => {
      // a cached credential continues synchronously: no promise, no microtask turn
      let principal;
      try {
        principal = core.cached(expressReader, req, apiKeyInQuery);
      } catch (error) {
        fail(req, res, error);
        return undefined;
      }
      if (principal === undefined) return authenticateRequest(req, res, next, apiKeyInQuery);
      req.auth = principal;
      const nonce = core.nonceFor(principal);
      if (nonce !== undefined) res.setHeader('DPoP-Nonce', nonce);
      next();
      return undefined;
    };
  }

  /** Runs `check` on the principal, authenticating first when no earlier middleware did. */
  function authorize(check: Check): RequestHandler {
    const authenticateFirst = requireAuth();
    const decide = (principal: Principal | undefined, req: Request, res: Response, next: NextFunction) => {
      const refusal = principal === undefined ? noPrincipal() : check(principal);
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

/** The guard of a resource service on express: the framework-neutral guard and its express middleware.
 *
 * @example
 * ```ts
 * app.post('/orders', guard.requireScope('orders:write'), (req, res) => res.json(place(req.body, req.auth!.sub)));
 * ```
 */
export interface Guard extends CoreGuard, GuardMiddleware {}

/**
 * Creates the guard for one resource service: verifies access tokens locally against the
 * issuer's JWKS and API keys through introspection, and refuses with RFC 6750 answers.
 *
 * @example
 * ```ts
 * const guard = createGuard({
 *   issuer: 'http://localhost:4000',
 *   audience: 'http://localhost:4001',
 *   apiKeys: { clientId: process.env.GUARD_CLIENT_ID!, clientSecret: process.env.GUARD_CLIENT_SECRET! },
 * });
 * app.get('/orders', guard.requireScope('orders:read'), listOrders);
 * app.get('/orders/admin/stats', guard.requireRole('admin'), stats);
 * ```
 */
export function createGuard(options: GuardOptions): Guard {
  const guard = createCoreGuard(options);
  return extendGuard(guard, guardMiddleware(coreOf(guard)));
}
