import type { NextFunction, Request, RequestHandler, Response } from 'express';

import { createApiKeyResolver, type ApiKeyResolver } from './api-key.js';
import { issuerMetadata } from './discovery.js';
import {
  CredentialsMissing,
  GuardError,
  InsufficientRole,
  InsufficientScope,
  InvalidRequest,
  VerifierUnavailable,
} from './errors.js';
import type { Principal } from './principal.js';
import { createAccessTokenVerifier, type AccessTokenVerifier, type AccessTokenVerifierOptions } from './verify-access-token.js';

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
 * const options: GuardOptions = {
 *   issuer: 'http://localhost:4000',
 *   audience: 'http://localhost:4001',
 *   clockToleranceSeconds: 10,
 *   apiKeys: { clientId, clientSecret },
 * };
 * ```
 */
export interface GuardOptions extends Omit<AccessTokenVerifierOptions, 'jwksUri'> {
  /** Default: the issuer's metadata (`/.well-known/oauth-authorization-server`). */
  readonly jwksUri?: string;
  /** API keys in `X-API-Key`, resolved by introspection as this service's own client. */
  readonly apiKeys?: {
    readonly clientId: string;
    readonly clientSecret: string;
    /** Default: the issuer's metadata. */
    readonly introspectionEndpoint?: string;
    readonly positiveTtlMs?: number;
    readonly negativeTtlMs?: number;
  };
  /** `realm` of the WWW-Authenticate challenge. Default: the audience. */
  readonly realm?: string;
  readonly logger?: GuardLogger;
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

/** The middleware a resource service puts in front of its routes.
 *
 * @example
 * ```ts
 * app.post('/orders', guard.requireScope('orders:write'), (req, res) => res.json(place(req.body, req.auth!.sub)));
 * ```
 */
export interface Guard {
  /** Authenticates the request and sets `req.auth`. */
  requireAuth(options?: RequireAuthOptions): RequestHandler;
  /** Requires every one of `scopes` (authenticating first when needed). */
  requireScope(...scopes: string[]): RequestHandler;
  /** Requires at least one of `roles` (authenticating first when needed). */
  requireRole(...roles: string[]): RequestHandler;
  /** Authenticates a raw credential the way requireAuth does, for non-express callers. */
  authenticate(credentials: { bearer?: string; apiKey?: string }): Promise<Principal>;
  readonly verifier: AccessTokenVerifier;
}

const quote = (value: string) => `"${value.replace(/["\\]/gu, '')}"`;

function refuse(res: Response, error: GuardError, realm: string): void {
  const params = [`realm=${quote(realm)}`];
  if (error.oauthError !== undefined && error.status !== 503) {
    params.push(`error=${quote(error.oauthError)}`, `error_description=${quote(error.publicDescription)}`);
  }
  if (error instanceof InsufficientScope) params.push(`scope=${quote(error.requiredScopes.join(' '))}`);
  if (error.status === 401 || error.status === 403 || error.status === 400) {
    res.setHeader('WWW-Authenticate', `Bearer ${params.join(', ')}`);
  }
  if (error.status === 503) res.setHeader('Retry-After', '5');
  res.setHeader('Cache-Control', 'no-store');
  const body: Record<string, string> = { error: error.oauthError ?? 'unauthorized', error_description: error.publicDescription };
  res.status(error.status).json(body);
}

function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/iu.exec(header);
  // a non-Bearer scheme (Basic…) is no bearer token; a malformed one is a bad token
  if (match === null) return /^Bearer\b/iu.test(header) ? '' : undefined;
  return match[1];
}

const SPACE = 0x20;
/** "bearer", compared with ASCII letters folded to lower case (`| 0x20`). */
const BEARER = [0x62, 0x65, 0x61, 0x72, 0x65, 0x72] as const;

/**
 * What `bearerToken` would return for `header` *provided that* the result is made of b64token
 * characters only: "Bearer" in any case, one or more spaces, the token, optional spaces. It
 * does not look at the token's characters, so its result may only be used to look up the
 * verified-token cache, which holds compact JWSs only (every one of their characters is a
 * b64token character, and none is a space): a hit is then exactly the token `bearerToken` would
 * have found. Anything else (a miss, another scheme) goes through `bearerToken`.
 */
function bearerCandidate(header: string): string | undefined {
  if (header.length < 8) return undefined;
  for (let i = 0; i < 6; i += 1) {
    if ((header.charCodeAt(i) | 0x20) !== BEARER[i]) return undefined;
  }
  let start = 6;
  while (header.charCodeAt(start) === SPACE) start += 1;
  let end = header.length;
  while (end > start && header.charCodeAt(end - 1) === SPACE) end -= 1;
  return start === 6 || end === start ? undefined : header.slice(start, end);
}

/** Whether `req` carries a query string at all (`req.query` parses it anew on every read). */
const hasQuery = (req: Request) => req.url.includes('?');

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
  const metadata = issuerMetadata(options.issuer);
  const realm = options.realm ?? options.audience;
  const verifier = createAccessTokenVerifier({
    ...options,
    jwksUri: options.jwksUri ?? (async () => (await metadata()).jwks_uri),
  });
  const apiKeyOptions = options.apiKeys;
  const apiKeys: ApiKeyResolver | undefined =
    apiKeyOptions === undefined
      ? undefined
      : createApiKeyResolver({
          ...apiKeyOptions,
          issuer: options.issuer,
          ...(options.now === undefined ? {} : { now: options.now }),
          introspectionEndpoint:
            apiKeyOptions.introspectionEndpoint ??
            (async () => {
              const endpoint = (await metadata()).introspection_endpoint;
              if (endpoint === undefined) throw new VerifierUnavailable('the issuer publishes no introspection endpoint');
              return endpoint;
            }),
        });

  async function authenticate({ bearer, apiKey }: { bearer?: string; apiKey?: string }): Promise<Principal> {
    if (bearer !== undefined && apiKey !== undefined) throw new InvalidRequest('both a bearer token and an API key were sent');
    if (bearer !== undefined) return verifier.verify(bearer);
    if (apiKey !== undefined) {
      if (apiKeys === undefined) throw new CredentialsMissing('API keys are not enabled for this service');
      return apiKeys.resolve(apiKey);
    }
    throw new CredentialsMissing('no bearer token or API key');
  }

  const fail = (req: Request, res: Response, error: unknown) => {
    const guardError = error instanceof GuardError ? error : new VerifierUnavailable('unexpected verification error', { cause: error });
    options.logger?.warn(
      { code: guardError.code, reason: guardError.reason, method: req.method, path: req.path },
      'request refused by guard',
    );
    refuse(res, guardError, realm);
  };

  /** The full path: every credential rule, then verification or introspection (cache included). */
  async function authenticateRequest(req: Request, res: Response, next: NextFunction, apiKeyInQuery: boolean): Promise<void> {
    try {
      const headerKey = req.headers['x-api-key'];
      const queryKey = apiKeyInQuery ? req.query['api_key'] : undefined;
      if (Array.isArray(headerKey) || Array.isArray(queryKey)) throw new InvalidRequest('repeated API key');
      const apiKey = typeof headerKey === 'string' ? headerKey : typeof queryKey === 'string' ? queryKey : undefined;
      if (typeof headerKey === 'string' && typeof queryKey === 'string') throw new InvalidRequest('API key sent twice');
      const bearer = bearerToken(req.headers.authorization);
      req.auth = await authenticate({
        ...(bearer === undefined ? {} : { bearer }),
        ...(apiKey === undefined ? {} : { apiKey }),
      });
    } catch (error) {
      fail(req, res, error);
      return;
    }
    next();
  }

  /**
   * The principal for a request whose only credential is already in a cache: a bearer token
   * verified earlier, or an API key the issuer vouched for within the positive cache time.
   * `undefined` sends the request through {@link authenticateRequest}, which applies every rule
   * (two credentials, a repeated key, a malformed header…) and answers refusals.
   *
   * Reads `req` as few times as it can: behind express 5, every request object has a hidden
   * class of its own (express re-parents it with `Object.setPrototypeOf`, then adds
   * properties), so each property read on `req` misses V8's inline caches.
   */
  function cachedPrincipal(req: Request, apiKeyInQuery: boolean): Principal | undefined {
    if (apiKeyInQuery && hasQuery(req) && req.query['api_key'] !== undefined) return undefined;
    const headers = req.headers;
    const authorization = headers.authorization;
    const headerKey = headers['x-api-key'];
    if (headerKey === undefined) {
      const token = authorization === undefined ? undefined : bearerCandidate(authorization);
      return token === undefined ? undefined : verifier.cached(token);
    }
    return authorization === undefined && typeof headerKey === 'string' ? apiKeys?.cached(headerKey) : undefined;
  }

  function requireAuth(authOptions: RequireAuthOptions = {}): RequestHandler {
    const apiKeyInQuery = authOptions.apiKeyInQuery === true;
    return (req: Request, res: Response, next: NextFunction) => {
      // a cached credential continues synchronously: no promise, no microtask turn
      const principal = cachedPrincipal(req, apiKeyInQuery);
      if (principal === undefined) return authenticateRequest(req, res, next, apiKeyInQuery);
      req.auth = principal;
      next();
      return undefined;
    };
  }

  /** Runs `check` on the principal, authenticating first when no earlier middleware did. */
  function authorize(check: (principal: Principal) => GuardError | undefined): RequestHandler {
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
    verifier,
    authenticate,
    requireAuth,
    requireScope: (...scopes) =>
      authorize((principal) => {
        for (const scope of scopes) {
          if (!principal.scopes.includes(scope)) {
            const missing = scopes.filter((required) => !principal.scopes.includes(required));
            return new InsufficientScope(scopes, `missing scope ${missing.join(' ')}`);
          }
        }
        return undefined;
      }),
    requireRole: (...roles) =>
      authorize((principal) => {
        for (const role of roles) if (principal.roles.includes(role)) return undefined;
        return new InsufficientRole(roles, `has roles [${principal.roles.join(', ')}]`);
      }),
  };
}
