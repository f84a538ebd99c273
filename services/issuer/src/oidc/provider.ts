import type { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';

import Provider from 'oidc-provider';

import type { Config } from '../config.js';
import type { PasswordHasher } from '../domain/passwords.js';
import type { KoaMiddleware } from './koa.js';
import type { PrivateJwk } from '../keys/key-store.js';
import { logIssuedTokens } from '../event-log.js';
import type { Logger } from '../logger.js';
import type { IssuerMetrics } from '../metrics.js';
import type { Stores } from '../storage/index.js';
import type { ClientCache } from './client-cache.js';
import { compareHashedSecrets, findClientsThroughCache } from './client-authentication.js';
import { boundKeySetFreshness, type ClientJwksFetcher } from './client-jwks.js';
import { providerConfiguration } from './configuration.js';
import { logServerErrors, rfc6749Answers } from './errors.js';
import { renderFormPostResponses } from './form-post.js';
import * as password from './grants/password.js';
import * as tokenExchange from './grants/token-exchange.js';
import { introspectionExtension } from './introspection.js';
import { atomicReplayDetection } from './replay-detection.js';
import { finishRotationAfterEachRequest } from './refresh-rotation.js';
import { resourceServerResolver } from './resource-indicators.js';
import { ResourceScopes } from './resource-scopes.js';
import { revocationExtension } from './revocation.js';
import { countTokenRequests } from './token-endpoint.js';

export { ID_TOKEN_TTL } from './configuration.js';

export interface ProviderDependencies {
  readonly config: Config;
  readonly stores: Stores;
  readonly hasher: PasswordHasher;
  readonly metrics: IssuerMetrics;
  /** Private signing keys, the signing (`current`) key first. */
  readonly signingKeys: readonly PrivateJwk[];
  readonly cookieKeys: readonly string[];
  readonly logger: Logger;
  /** Client metadata kept between requests (absent: every lookup reads the database). */
  readonly clients?: ClientCache;
  /** The client's address under TRUST_PROXY (the engine's own `ctx.ip` would trust any X-Forwarded-For). */
  readonly clientAddress: (req: IncomingMessage) => string;
  /** Engine middlewares of the HTTP edge (the CORS policy's, which must see every engine answer), run around every engine request. */
  readonly edgeMiddlewares: readonly KoaMiddleware[];
  /** The scopes resources declare, kept between requests (absent: read on every token request). */
  readonly resourceScopes?: ResourceScopes;
  /** Fetches the key sets of private_key_jwt clients registered with a jwks_uri (one per process, shared by every engine it builds). */
  readonly clientJwks: ClientJwksFetcher;
}

/** The path and query of a request target: an absolute-form target (`GET http://host/x`) loses its origin, `*` and the like become `/`. */
function pathAndQuery(target: string | undefined): string {
  if (target?.startsWith('/') === true && !target.startsWith('//')) return target;
  const url = target === undefined ? null : URL.parse(target);
  return url === null || (url.protocol !== 'http:' && url.protocol !== 'https:') ? '/' : `${url.pathname}${url.search}`;
}

/**
 * Every absolute URL the engine writes (discovery's endpoints, Location headers, form actions,
 * the audiences it accepts in client assertions and DPoP proofs) is built from koa's view of
 * the request's origin, which koa takes from `Host`, from `X-Forwarded-Host`/`-Proto` when
 * `proxy` is set, or from an absolute-form request target: all of them the client's to choose.
 * This engine's own request prototype answers ISSUER's origin instead, so those URLs, and
 * whether its cookies are `Secure`, follow ISSUER alone. Nothing of the engine reads a
 * forwarded header after this (`proxy` stays off): client addresses come from
 * `clientAddress`, which applies TRUST_PROXY exactly (hop counts and address lists).
 */
function pinOriginToIssuer(provider: Provider, issuer: string): void {
  const { protocol, host, origin } = new URL(issuer);
  const scheme = protocol.slice(0, -1);
  provider.proxy = false;
  Object.defineProperties(provider.request, {
    protocol: { get: () => scheme },
    host: { get: () => host },
    href: {
      get(this: { originalUrl: string | undefined }) {
        return `${origin}${pathAndQuery(this.originalUrl)}`;
      },
    },
    URL: {
      get(this: { href: string }) {
        return new URL(this.href);
      },
    },
  });
}

/**
 * What escapes the engine's own error handling (a failure in a middleware around it, a
 * response stream that breaks) reaches koa's application error event; koa's default listener
 * prints the stack over several lines on stderr. One JSON line instead, with the logger's
 * error serializer. Errors koa would not print (4xx it exposes) stay at debug, and a response
 * that broke after its headers were sent (the client went away) is a warning.
 */
function logEscapedErrors(provider: Provider, logger: Logger): void {
  // koa's own event, which the engine's typings (its events only) do not list
  const koa: EventEmitter = provider;
  koa.on('error', (error: unknown, ctx?: { method?: string; path?: string }) => {
    const { status, expose, headerSent } = error as { status?: unknown; expose?: unknown; headerSent?: unknown };
    const details = { err: error, method: ctx?.method, path: ctx?.path };
    if (expose === true || status === 404) logger.debug(details, 'engine request refused');
    else if (headerSent === true) logger.warn(details, 'engine response failed after its headers were sent');
    else logger.error(details, 'engine request failed');
  });
}

/** Builds the engine with Sigil's storage, keys, grants, secret handling and answers. */
export function createProvider(dependencies: ProviderDependencies): Provider {
  const { config, stores, logger, metrics, clients } = dependencies;
  const resourceScopes = dependencies.resourceScopes ?? new ResourceScopes(stores.clients);
  const resolveResourceServer = resourceServerResolver(resourceScopes);
  const provider = new Provider(config.issuer, providerConfiguration({ ...dependencies, resolveResourceServer }));
  provider.registerGrantType(
    password.grantType,
    password.handler(provider, {
      stores,
      hasher: dependencies.hasher,
      resolveResourceServer,
      clientAddress: dependencies.clientAddress,
      onSignIn: (outcome) => metrics.signIns.inc({ outcome }),
    }),
    password.parameters,
  );
  provider.registerGrantType(
    tokenExchange.grantType,
    tokenExchange.handler(provider, {
      issuer: config.issuer,
      signingKeys: dependencies.signingKeys,
      payloads: stores.payloads,
      revocations: stores.revocations,
      users: stores.users,
      resourceScopes,
      accessTokenTtl: config.accessTokenTtl,
    }),
    tokenExchange.parameters,
  );
  pinOriginToIssuer(provider, config.issuer);
  // form_post answers with a CSP that lets this one page post to the client's redirect URI
  renderFormPostResponses(provider);

  if (clients !== undefined) findClientsThroughCache(provider, clients);
  compareHashedSecrets(provider);
  // one-time JWTs (client assertions, DPoP proofs): each jti used once across replicas
  atomicReplayDetection(provider, stores.replays);
  // private_key_jwt clients' jwks_uri keys: looked up again on a missing kid once older than the refetch floor
  boundKeySetFreshness(provider, dependencies.clientJwks.floorSeconds);
  logServerErrors(provider, logger);
  logEscapedErrors(provider, logger);
  logIssuedTokens(provider, logger);

  // koa runs what follows `await next()` in reverse order of registration: the token request
  // is counted (registered first) once every other middleware has rewritten its answer
  const middlewares: KoaMiddleware[] = [
    countTokenRequests(metrics),
    ...dependencies.edgeMiddlewares,
    rfc6749Answers,
    introspectionExtension({ issuer: config.issuer, signingKeys: dependencies.signingKeys, apiKeys: stores.apiKeys, payloads: stores.payloads, revocations: stores.revocations }),
    revocationExtension({ issuer: config.issuer, signingKeys: dependencies.signingKeys, revocations: stores.revocations }),
    finishRotationAfterEachRequest(stores.payloads, logger),
  ];
  for (const middleware of middlewares) provider.use(middleware);
  return provider;
}
