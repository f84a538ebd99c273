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

function bearerToken(req: Request): string | undefined {
  const header = req.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/iu.exec(header);
  // a non-Bearer scheme (Basic…) is no bearer token; a malformed one is a bad token
  if (match === null) return /^Bearer\b/iu.test(header) ? '' : undefined;
  return match[1];
}

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

  function requireAuth(authOptions: RequireAuthOptions = {}): RequestHandler {
    return async (req: Request, res: Response, next: NextFunction) => {
      try {
        const headerKey = req.headers['x-api-key'];
        const queryKey = authOptions.apiKeyInQuery === true ? req.query['api_key'] : undefined;
        if (Array.isArray(headerKey) || Array.isArray(queryKey)) throw new InvalidRequest('repeated API key');
        const apiKey = typeof headerKey === 'string' ? headerKey : typeof queryKey === 'string' ? queryKey : undefined;
        if (typeof headerKey === 'string' && typeof queryKey === 'string') throw new InvalidRequest('API key sent twice');
        const bearer = bearerToken(req);
        req.auth = await authenticate({
          ...(bearer === undefined ? {} : { bearer }),
          ...(apiKey === undefined ? {} : { apiKey }),
        });
        next();
      } catch (error) {
        fail(req, res, error);
      }
    };
  }

  /** Runs `check` on the principal, authenticating first when no earlier middleware did. */
  function authorize(check: (principal: Principal) => void): RequestHandler {
    const authenticateFirst = requireAuth();
    return (req, res, next) => {
      const decide = () => {
        try {
          if (req.auth === undefined) throw new CredentialsMissing('no principal');
          check(req.auth);
          next();
        } catch (error) {
          fail(req, res, error);
        }
      };
      if (req.auth !== undefined) decide();
      else void authenticateFirst(req, res, decide);
    };
  }

  return {
    verifier,
    authenticate,
    requireAuth,
    requireScope: (...scopes) =>
      authorize((principal) => {
        const missing = scopes.filter((scope) => !principal.scopes.includes(scope));
        if (missing.length > 0) throw new InsufficientScope(scopes, `missing scope ${missing.join(' ')}`);
      }),
    requireRole: (...roles) =>
      authorize((principal) => {
        if (!roles.some((role) => principal.roles.includes(role))) {
          throw new InsufficientRole(roles, `has roles [${principal.roles.join(', ')}]`);
        }
      }),
  };
}
