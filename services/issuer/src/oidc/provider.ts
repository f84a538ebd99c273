import type { IncomingMessage } from 'node:http';

import type { Knex } from 'knex';
import Provider, { errors, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';

import type { Config } from '../config.js';
import type { PasswordHasher } from '../domain/passwords.js';
import type { IssuerMetrics } from '../metrics.js';
import { secretMatches } from '../domain/secrets.js';
import { findUser, type UserRecord } from '../domain/users.js';
import type { PrivateJwk } from '../keys/key-store.js';
import type { Logger } from '../logger.js';
import { flushPendingConsume, knexAdapterFactory } from './adapter.js';
import type { ClientCache } from './client-cache.js';
import { passwordGrant, PASSWORD_GRANT_PARAMETERS } from './grants/password.js';
import { introspectionExtension } from './introspection.js';
import { logoutSource, postLogoutSuccessSource, renderError } from './render-error.js';
import { readsOf } from './request-reads.js';
import { clientRoles, defaultResource, resourceServerResolver } from './resource-servers.js';
import { routes } from './routes.js';

/** Lifetime of ID tokens, in seconds; retired keys stay published at least this long. */
export const ID_TOKEN_TTL = 3600;

export interface ProviderDependencies {
  readonly config: Config;
  readonly db: Knex;
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
}

/** oidc-provider options. Each non-default key says why it is set. */
export function providerConfiguration(
  { config, db, signingKeys, cookieKeys, clients }: ProviderDependencies,
  resolveResourceServer: ReturnType<typeof resourceServerResolver>,
): Configuration {
  const corsOrigins = new Set(config.corsOrigins);
  // one read of a user per request: the engine asks for the account and for the token's roles
  // separately (and a refresh token brings its user along: see request-reads.ts)
  const userFor = (ctx: object, id: string): Promise<UserRecord | undefined> => {
    const { users } = readsOf(ctx);
    let user = users.get(id);
    if (user === undefined) users.set(id, (user = findUser(db, id)));
    return user;
  };
  return {
    adapter: knexAdapterFactory(db, clients),
    // never the engine's built-in development keystore: our keys only
    jwks: { keys: signingKeys.map((key) => ({ ...key })) },
    cookies: {
      keys: [...cookieKeys],
      long: { signed: true, httpOnly: true, sameSite: 'lax' },
      short: { signed: true, httpOnly: true, sameSite: 'lax' },
    },
    routes,
    // S13: the authorization code flow only, no implicit or hybrid
    responseTypes: ['code'],
    // S2: PKCE for every authorization request; v9 accepts S256 only
    pkce: { required: () => true },
    // secrets are SHA-256 digests at rest, so no HMAC-based client auth (ENGINE-NOTES)
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'none'],
    enabledJWA: {
      idTokenSigningAlgValues: ['RS256'],
      userinfoSigningAlgValues: ['RS256'],
      introspectionSigningAlgValues: ['RS256'],
      authorizationSigningAlgValues: ['RS256'],
    },
    // S8: cross-origin calls with client authentication only from the allowlist
    clientBasedCORS: (_ctx, origin) => corsOrigins.has(origin),
    extraClientMetadata: {
      properties: ['allowed_scopes', 'roles', 'resources', 'first_party'],
    },
    // RFC 9068 tokens carry roles: a client's for client credentials, a user's (read
    // afresh on every issue, so refreshes pick up role changes) otherwise
    extraTokenClaims: async (ctx: KoaContextWithOIDC, token) => {
      if (token.kind === 'ClientCredentials') {
        return { roles: ctx.oidc.client === undefined ? [] : clientRoles(ctx.oidc.client) };
      }
      const user = token.accountId === undefined ? undefined : await userFor(ctx, token.accountId);
      return {
        roles: [...(user?.roles ?? [])],
        // lets introspection tell when the grant behind a user token was revoked (RFC 7662)
        ...(token.grantId === undefined ? {} : { grant_id: token.grantId }),
      };
    },
    claims: {
      openid: ['sub'],
      profile: ['preferred_username'],
      email: ['email'],
    },
    findAccount: async (ctx, id) => {
      const user = await userFor(ctx, id);
      if (user === undefined || user.disabled) return undefined;
      return {
        accountId: user.id,
        claims: () => ({ sub: user.id, preferred_username: user.username, ...(user.email === null ? {} : { email: user.email }) }),
      };
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // stored tokens (refresh tokens): only the client they were issued to; JWT access
        // tokens and API keys are answered by introspectionExtension
        allowedPolicy: (_ctx, client, token) => token.clientId === client.clientId,
      },
      revocation: {
        enabled: true,
        allowedPolicy: (_ctx, client, token) => token.clientId === client.clientId,
      },
      // sender-constrained tokens need a guard that checks the proof; until then, bearer only
      dPoP: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource,
        getResourceServerInfo: resolveResourceServer,
        useGrantedResource: () => true,
      },
      userinfo: { enabled: true },
      rpInitiatedLogout: { enabled: true, logoutSource, postLogoutSuccessSource },
    },
    loadExistingGrant,
    renderError,
    // S5: every use of a refresh token replaces it; a spent one revokes the grant
    rotateRefreshToken: true,
    // refresh tokens for every client registered with the refresh_token grant (not only offline_access)
    issueRefreshToken: (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    ttl: {
      AccessToken: config.accessTokenTtl,
      ClientCredentials: config.accessTokenTtl,
      AuthorizationCode: 60,
      IdToken: ID_TOKEN_TTL,
      Interaction: 600,
      Session: 14 * 24 * 3600,
      Grant: config.refreshTokenTtl,
      // absolute lifetime (S5): a rotated refresh token lives only until the first one of its
      // chain (iiat) is REFRESH_TOKEN_TTL old
      RefreshToken: (_ctx, token) => {
        const now = Math.floor(Date.now() / 1000);
        const first = typeof token.iiat === 'number' ? token.iiat : now;
        return Math.max(1, first + config.refreshTokenTtl - now);
      },
    },
  };
}

const KNOWN_GRANT_TYPES: ReadonlySet<string> = new Set(['client_credentials', 'password', 'authorization_code', 'refresh_token', 'unknown']);

/** The methods each engine endpoint answers, for 405 answers. */
const METHODS_BY_PATH: ReadonlyMap<string, string> = new Map([
  [routes.token, 'POST, OPTIONS'],
  [routes.introspection, 'POST, OPTIONS'],
  [routes.revocation, 'POST, OPTIONS'],
  [routes.jwks, 'GET, HEAD, OPTIONS'],
  [routes.userinfo, 'GET, POST, OPTIONS'],
  [routes.authorization, 'GET, POST'],
  [routes.end_session, 'GET, POST'],
]);

/**
 * The grant an authorization request runs under. First-party clients (`--first-party`) are
 * trusted to get what they ask for within their registration, so they never see a consent
 * page; everyone else keeps the grant the user consented to.
 */
async function loadExistingGrant(ctx: KoaContextWithOIDC) {
  const { client, session, provider } = ctx.oidc;
  if (client === undefined) return undefined;
  const grantId = (ctx.oidc.result?.['consent'] as { grantId?: string } | undefined)?.grantId ?? session?.grantIdFor(client.clientId);
  const existing = grantId === undefined ? undefined : await provider.Grant.find(grantId);
  if (client['first_party'] !== true || session?.accountId === undefined) return existing;
  const grant = existing ?? new provider.Grant({ clientId: client.clientId, accountId: session.accountId });
  grant.addOIDCScope([...ctx.oidc.requestParamOIDCScopes].join(' '));
  for (const [indicator, resourceServer] of Object.entries(ctx.oidc.resourceServers ?? {})) {
    grant.addResourceScope(indicator, [...ctx.oidc.requestParamScopes].filter((scope) => resourceServer.scopes.has(scope)).join(' '));
  }
  await grant.save();
  return grant;
}

type KoaMiddleware = Parameters<Provider['use']>[0];

/**
 * RFC 6749 §5.2 names two cases the engine answers as `invalid_request`: a grant the client
 * is not registered for (`unauthorized_client`) and no client authentication (401
 * `invalid_client`).
 */
const answerRfc6749Codes: KoaMiddleware = async (ctx, next) => {
  await next();
  const body = ctx.body as { error?: unknown; error_description?: unknown } | undefined;
  if (ctx.status !== 400 || ctx.path !== routes.token || body?.error !== 'invalid_request') return;
  if (body.error_description === 'requested grant type is not allowed for this client') {
    ctx.body = { ...body, error: 'unauthorized_client' };
  } else if (body.error_description === 'no client authentication mechanism provided') {
    ctx.status = 401;
    ctx.body = { error: 'invalid_client', error_description: 'client authentication is required' };
  }
};

/**
 * What the engine does not route is JSON, never an HTML page: a 405 with `Allow` for an
 * endpoint asked with the wrong method (RFC 9110 §15.5.6), a 404 otherwise.
 */
const answerUnroutedAsJson: KoaMiddleware = async (ctx, next) => {
  await next();
  if (ctx.status !== 404 || ctx.body !== undefined) return;
  const allowed = METHODS_BY_PATH.get(ctx.path);
  if (allowed !== undefined) {
    ctx.status = 405;
    ctx.set('Allow', allowed);
    ctx.body = { error: 'invalid_request', error_description: `use ${allowed.replace(', OPTIONS', '')} on this endpoint` };
    return;
  }
  ctx.status = 404;
  ctx.body = { error: 'not_found', error_description: 'no such endpoint' };
};

/** Counts token requests as they were answered, by grant type and outcome. */
function countTokenRequests(metrics: IssuerMetrics): KoaMiddleware {
  return async (ctx, next) => {
    await next();
    if (ctx.path !== routes.token || ctx.method !== 'POST') return;
    const params = 'oidc' in ctx ? (ctx as KoaContextWithOIDC).oidc.params : undefined;
    const grantType = typeof params?.['grant_type'] === 'string' ? params['grant_type'] : 'unknown';
    const error = (ctx.body as { error?: unknown } | undefined)?.error;
    metrics.tokenRequests.inc({
      grant_type: KNOWN_GRANT_TYPES.has(grantType) ? grantType : 'other',
      outcome: ctx.status < 400 ? 'success' : typeof error === 'string' ? error.slice(0, 40) : 'error',
    });
  };
}

/** Builds the engine with Sigil's storage, keys and secret handling. */
export function createProvider(dependencies: ProviderDependencies): Provider {
  const resolveResourceServer = resourceServerResolver(dependencies.config.accessTokenTtl);
  const provider = new Provider(dependencies.config.issuer, providerConfiguration(dependencies, resolveResourceServer));
  provider.registerGrantType(
    'password',
    passwordGrant(provider, {
      db: dependencies.db,
      hasher: dependencies.hasher,
      resolveResourceServer,
      clientAddress: dependencies.clientAddress,
      onSignIn: (outcome) => dependencies.metrics.signIns.inc({ outcome }),
    }),
    PASSWORD_GRANT_PARAMETERS,
  );
  // the engine only reads X-Forwarded-Proto/Host (cookie security); client IPs come from express,
  // which applies TRUST_PROXY exactly (hop counts and address lists)
  const { trustProxy } = dependencies.config;
  provider.proxy = trustProxy !== false && trustProxy !== 0;

  // the engine's lookup, through Sigil's client cache: validated clients are kept for as long as
  // their metadata is cached (the engine alone keeps 100 and validates again on every other lookup)
  const { clients } = dependencies;
  if (clients !== undefined) {
    const engineFind = provider.Client.find.bind(provider.Client);
    provider.Client.find = (id: string) => (typeof id === 'string' && id !== '' ? clients.instance(provider, id, () => engineFind(id)) : engineFind(id));
  }

  // secrets are stored as SHA-256 digests and compared in constant time (K2)
  provider.Client.prototype.compareClientSecret = function compareClientSecret(actual: string) {
    return typeof this.clientSecret === 'string' && secretMatches(actual, this.clientSecret);
  };

  const { logger, metrics } = dependencies;
  provider.on('server_error', (_ctx, error) => logger.error({ err: error }, 'oidc-provider server error'));

  // koa runs what follows `await next()` in reverse order of registration: the last
  // registered rewrites first, and the token request is counted once every rewrite is done
  provider.use(countTokenRequests(metrics));
  provider.use(answerUnroutedAsJson);
  provider.use(answerRfc6749Codes);
  const introspection = introspectionExtension(dependencies.db, dependencies.config.issuer, dependencies.signingKeys);
  provider.use(async (ctx, next) => {
    await next();
    await introspection(ctx as KoaContextWithOIDC);
  });
  // a refresh token whose consumption was put off to its successor's insert is consumed even
  // when the request ended without one (adapter.ts)
  const { db } = dependencies;
  provider.use(async (ctx, next) => {
    try {
      await next();
    } finally {
      // the answer is already decided; a reuse found here has revoked the grant all the same
      await flushPendingConsume(db, ctx).catch((error: unknown) => {
        if (!(error instanceof errors.InvalidGrant)) logger.error({ err: error }, 'consuming a refresh token failed');
      });
    }
  });
  return provider;
}
