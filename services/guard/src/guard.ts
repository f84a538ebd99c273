import { createApiKeyResolver, type ApiKeyResolver } from './api-key.js';
import type { Credentials } from './credentials.js';
import { issuerMetadata, type IssuerMetadata } from './discovery.js';
import { CredentialsMissing, InvalidRequest, IssuerMetadataRefused } from './errors.js';
import { guardMiddleware, type GuardLogger, type GuardMiddleware } from './middleware.js';
import type { Principal } from './principal.js';
import { createAccessTokenVerifier, type AccessTokenVerifier, type AccessTokenVerifierOptions } from './verify-access-token.js';

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

/** The middleware a resource service puts in front of its routes.
 *
 * @example
 * ```ts
 * app.post('/orders', guard.requireScope('orders:write'), (req, res) => res.json(place(req.body, req.auth!.sub)));
 * ```
 */
export interface Guard extends GuardMiddleware {
  /** Authenticates a raw credential the way requireAuth does, for non-express callers. */
  authenticate(credentials: Credentials): Promise<Principal>;
  /**
   * Reads the issuer's metadata now (unless every endpoint was given), so that a service can
   * refuse to start on a wrong ISSUER rather than answer 503 to every request.
   * @throws IssuerMetadataRefused when the issuer answered with metadata the guard will not use
   *   (a configuration error); VerifierUnavailable when it could not be reached (try again later)
   */
  ready(): Promise<void>;
  readonly verifier: AccessTokenVerifier;
}

/** The resolver of `options.apiKeys`, if any; its introspection endpoint comes from the issuer's metadata unless given. */
function apiKeyResolver(options: GuardOptions, metadata: () => Promise<IssuerMetadata>): ApiKeyResolver | undefined {
  const apiKeyOptions = options.apiKeys;
  if (apiKeyOptions === undefined) return undefined;
  return createApiKeyResolver({
    ...apiKeyOptions,
    issuer: options.issuer,
    audience: options.audience,
    ...(options.now === undefined ? {} : { now: options.now }),
    introspectionEndpoint:
      apiKeyOptions.introspectionEndpoint ??
      (async () => {
        const endpoint = (await metadata()).introspection_endpoint;
        // issuerMetadata already refuses such metadata when API keys need it: this only narrows the type
        if (endpoint === undefined) throw new IssuerMetadataRefused('issuer metadata has no introspection_endpoint, which API keys need');
        return endpoint;
      }),
  });
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
  const { logger } = options;
  const needsIntrospection = options.apiKeys !== undefined && options.apiKeys.introspectionEndpoint === undefined;
  const metadata = issuerMetadata(options.issuer, {
    introspectionRequired: needsIntrospection,
    onRefused: (error) => logger?.warn({ code: error.code, reason: error.reason }, 'issuer metadata refused; the guard will not use it'),
  });
  const verifier = createAccessTokenVerifier({
    ...options,
    jwksUri: options.jwksUri ?? (async () => (await metadata()).jwks_uri),
  });
  const apiKeys = apiKeyResolver(options, metadata);

  async function authenticate({ bearer, apiKey }: Credentials): Promise<Principal> {
    if (bearer !== undefined && apiKey !== undefined) throw new InvalidRequest('both a bearer token and an API key were sent');
    if (bearer !== undefined) return verifier.verify(bearer);
    if (apiKey !== undefined) {
      if (apiKeys === undefined) throw new CredentialsMissing('API keys are not enabled for this service');
      return apiKeys.resolve(apiKey);
    }
    throw new CredentialsMissing('no bearer token or API key');
  }

  async function ready(): Promise<void> {
    if (options.jwksUri === undefined || needsIntrospection) await metadata();
  }

  const middleware = guardMiddleware({ verifier, apiKeys, authenticate, realm: options.realm ?? options.audience, logger });
  return { verifier, authenticate, ready, ...middleware };
}
