import type { IncomingMessage } from 'node:http';

import Provider from 'oidc-provider';

import type { Config } from '../config.js';
import type { PasswordHasher } from '../domain/passwords.js';
import type { KoaMiddleware } from './koa.js';
import type { PrivateJwk } from '../keys/key-store.js';
import type { Logger } from '../logger.js';
import type { IssuerMetrics } from '../metrics.js';
import type { Stores } from '../storage/index.js';
import type { ClientCache } from './client-cache.js';
import { compareHashedSecrets, findClientsThroughCache } from './client-authentication.js';
import { providerConfiguration } from './configuration.js';
import { logServerErrors, rfc6749Answers } from './errors.js';
import * as password from './grants/password.js';
import { introspectionExtension } from './introspection.js';
import { finishRotationAfterEachRequest } from './refresh-rotation.js';
import { resourceServerResolver } from './resource-indicators.js';
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
}

/** Builds the engine with Sigil's storage, keys, grants, secret handling and answers. */
export function createProvider(dependencies: ProviderDependencies): Provider {
  const { config, stores, logger, metrics, clients } = dependencies;
  const resolveResourceServer = resourceServerResolver(config.accessTokenTtl);
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
  // the engine only reads X-Forwarded-Proto/Host (cookie security); client IPs come from
  // clientAddress, which applies TRUST_PROXY exactly (hop counts and address lists)
  provider.proxy = config.trustProxy !== false && config.trustProxy !== 0;

  if (clients !== undefined) findClientsThroughCache(provider, clients);
  compareHashedSecrets(provider);
  logServerErrors(provider, logger);

  // koa runs what follows `await next()` in reverse order of registration: the token request
  // is counted (registered first) once every other middleware has rewritten its answer
  const middlewares: KoaMiddleware[] = [
    countTokenRequests(metrics),
    ...dependencies.edgeMiddlewares,
    rfc6749Answers,
    introspectionExtension({ issuer: config.issuer, signingKeys: dependencies.signingKeys, apiKeys: stores.apiKeys, payloads: stores.payloads }),
    finishRotationAfterEachRequest(stores.payloads, logger),
  ];
  for (const middleware of middlewares) provider.use(middleware);
  return provider;
}
