import { createApiKeyResolver, type ApiKeyResolver } from './api-key.js';
import { createCore, type Accepted, type Core, type GuardLogger, type GuardRequest, type GuardStats, type Refusal, type Requirements } from './core.js';
import type { Credentials } from './credentials.js';
import { issuerMetadata, type IssuerMetadata } from './discovery.js';
import { CredentialsMissing, InvalidRequest, IssuerMetadataRefused } from './errors.js';
import type { Principal } from './principal.js';
import { RevocationFeed } from './revocation-feed.js';
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
export interface GuardOptions extends Omit<AccessTokenVerifierOptions, 'jwksUri' | 'revocationList'> {
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
  /**
   * Revoked tokens, learnt by polling the issuer's revocation feed (`GET /token/revocations`)
   * as this service's own client (registered for the audience; the same client as `apiKeys`'s).
   * A token whose `jti` or `grant_id` is listed, or whose `client_id` is listed with a
   * `revoked_at` at or after its `iat` (a disabled or deleted client), is refused (401
   * `invalid_token`), also when it is in the verified-token cache. Off when absent.
   */
  readonly revocations?: {
    readonly clientId: string;
    readonly clientSecret: string;
    /** Default: `<issuer>/token/revocations`. */
    readonly feedUri?: string;
    /** Time between polls. Default 10 s. */
    readonly intervalMs?: number;
    /** How long the last list read is trusted while the feed cannot be read (then 503). Default 24 hours. */
    readonly staleIfErrorMs?: number;
    readonly timeoutMs?: number;
  };
  /** `realm` of the WWW-Authenticate challenge. Default: the audience. */
  readonly realm?: string;
  /**
   * The service's public base URL when a proxy in front of it changes the scheme, host or path
   * of requests (`https://api.example.com/orders-service`): DPoP proofs name the URL the client
   * called (RFC 9449 §4.3 step 9), this followed by the path the service receives. Default: the
   * request's own scheme, `Host` and path, as express reads them.
   */
  readonly publicUrl?: string;
  readonly logger?: GuardLogger;
}

/**
 * A guard without any framework: the framework-neutral API (`decide`, `authenticateRequest`),
 * what the express middleware and the Fastify plugin are built over.
 *
 * @example
 * ```ts
 * const outcome = await guard.authenticateRequest({ method: req.method, url: req.url, headers: req.headers }, { scopes: ['orders:read'] });
 * if (!outcome.ok) return reply(outcome.status, outcome.headers, JSON.stringify(outcome.body));
 * ```
 */
export interface CoreGuard {
  /** Authenticates a raw credential the way requireAuth does (throws the GuardError of a refusal). */
  authenticate(credentials: Credentials): Promise<Principal>;
  /**
   * Decides a request given as plain data: `Accepted` (the principal, and headers to add to the
   * answer) or the `Refusal` with its whole answer (status, headers, JSON body). Synchronous
   * when the credential is in a cache, a promise otherwise; never rejects.
   */
  decide(request: GuardRequest, requirements?: Requirements): Accepted | Refusal | Promise<Accepted | Refusal>;
  /** {@link CoreGuard.decide}, always as a promise. */
  authenticateRequest(request: GuardRequest, requirements?: Requirements): Promise<Accepted | Refusal>;
  /** The guard's counters since it was created (requests by outcome, caches, JWKS and revocation-feed fetches), for metrics. */
  stats(): GuardStats;
  /**
   * Reads the issuer's metadata now (unless every endpoint was given), so that a service can
   * refuse to start on a wrong ISSUER rather than answer 503 to every request.
   * @throws IssuerMetadataRefused when the issuer answered with metadata the guard will not use
   *   (a configuration error); VerifierUnavailable when it could not be reached (try again later)
   */
  ready(): Promise<void>;
  readonly verifier: AccessTokenVerifier;
  /** The revocation list, when `revocations` was given (for monitoring and tests). */
  readonly revocations: RevocationFeed | undefined;
  /** Stops polling the revocation feed (nothing else of the guard holds a timer). */
  close(): void;
}

/** The core of each guard, for the framework adapters (express, Fastify); not part of the package's API. */
const cores = new WeakMap<CoreGuard, Core>();

/** `guard` with `extra` (an adapter's methods), sharing its core. */
export function extendGuard<T extends object>(guard: CoreGuard, extra: T): CoreGuard & T {
  const extended = { ...guard, ...extra };
  cores.set(extended, coreOf(guard));
  return extended;
}

/** The core of a guard made by {@link createCoreGuard} or `createGuard`. */
export function coreOf(guard: CoreGuard): Core {
  const core = cores.get(guard);
  if (core === undefined) throw new TypeError('not a guard made by createGuard or createCoreGuard');
  return core;
}

/** `publicUrl`, checked (an absolute http(s) URL, no query or fragment) and without a trailing slash. */
function publicBaseUrl(value: string): string {
  const url = URL.parse(value);
  if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new TypeError(`publicUrl must be an absolute http(s) URL without query or fragment (got "${value}")`);
  }
  return url.href.replace(/\/$/u, '');
}

/** The poller of `options.revocations`, started; undefined when it is not configured. */
function revocationFeed(options: GuardOptions): RevocationFeed | undefined {
  const feedOptions = options.revocations;
  if (feedOptions === undefined) return undefined;
  const { logger } = options;
  const feed = new RevocationFeed({
    ...feedOptions,
    feedUri: feedOptions.feedUri ?? `${options.issuer.replace(/\/$/u, '')}/token/revocations`,
    ...(options.now === undefined ? {} : { now: options.now }),
    onError: (error) => logger?.warn({ code: error.code, reason: error.reason }, 'revocation feed read failed; the last list read is used'),
  });
  feed.start();
  return feed;
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
 * Creates the framework-neutral guard of one resource service: verifies access tokens locally
 * against the issuer's JWKS and API keys through introspection, and words RFC 6750 refusals.
 * `createGuard` adds the express middleware to it; the Fastify plugin takes either.
 *
 * @example
 * ```ts
 * const guard = createCoreGuard({ issuer: 'http://localhost:4000', audience: 'http://localhost:4001' });
 * const outcome = await guard.authenticateRequest({ method: 'GET', url: '/orders', headers: { authorization } });
 * ```
 */
export function createCoreGuard(options: GuardOptions): CoreGuard {
  const { logger } = options;
  const needsIntrospection = options.apiKeys !== undefined && options.apiKeys.introspectionEndpoint === undefined;
  const metadata = issuerMetadata(options.issuer, {
    introspectionRequired: needsIntrospection,
    onRefused: (error) => logger?.warn({ code: error.code, reason: error.reason }, 'issuer metadata refused; the guard will not use it'),
  });
  const revocations = revocationFeed(options);
  const verifier = createAccessTokenVerifier({
    ...options,
    jwksUri: options.jwksUri ?? (async () => (await metadata()).jwks_uri),
    ...(revocations === undefined ? {} : { revocationList: revocations }),
  });
  const apiKeys = apiKeyResolver(options, metadata);

  async function authenticate({ bearer, dpop, apiKey }: Credentials): Promise<Principal> {
    if ((bearer !== undefined || dpop !== undefined) && apiKey !== undefined) throw new InvalidRequest('both an access token and an API key were sent');
    if (dpop !== undefined) return verifier.verifyDpop(dpop.accessToken, dpop);
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

  const publicUrl = options.publicUrl === undefined ? undefined : publicBaseUrl(options.publicUrl);
  const core = createCore({ verifier, apiKeys, authenticate, realm: options.realm ?? options.audience, publicUrl, logger });
  const stats = (): GuardStats => ({
    requests: core.counts(),
    verifiedTokenCache: verifier.cacheCounts(),
    jwksFetches: { succeeded: verifier.keys.fetchSuccesses, failed: verifier.keys.fetchFailures },
    revocationFeedPolls: { succeeded: revocations?.succeededPollCount ?? 0, failed: revocations?.failedPollCount ?? 0 },
  });
  const guard: CoreGuard = {
    verifier,
    authenticate,
    decide: core.decide,
    authenticateRequest: async (request, requirements) => core.decide(request, requirements),
    stats,
    ready,
    revocations,
    close: () => revocations?.stop(),
  };
  cores.set(guard, core);
  return guard;
}
