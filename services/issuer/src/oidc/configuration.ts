import type { AccountClaims, Configuration, KoaContextWithOIDC } from 'oidc-provider';

import type { Config } from '../config.js';
import { CLIENT_ASSERTION_ALGORITHMS } from '../domain/client-keys.js';
import { findUser, type UserRecord } from '../domain/users.js';
import type { PrivateJwk } from '../keys/key-store.js';
import type { Stores } from '../storage/index.js';
import { adapterFactory } from './adapter.js';
import { assertShortLived, CLOCK_TOLERANCE_S } from './client-assertions.js';
import type { ClientCache } from './client-cache.js';
import type { ClientJwksFetcher } from './client-jwks.js';
import { clientAccessTokenTtl, clientRoles, EXTRA_CLIENT_METADATA, loadClientMetadata } from './client-metadata.js';
import { renderError } from './error-page.js';
import { loadExistingGrant } from './first-party-consent.js';
import { actClaimOf } from './grants/token-exchange.js';
import { introspectionAllowed } from './introspection.js';
import { logoutSource, postLogoutSuccessSource } from './logout.js';
import { readAheadOf } from './request-read-ahead.js';
import { defaultResource, useGrantedResource, type ResourceServerResolver } from './resource-indicators.js';
import { revocationAllowed } from './revocation.js';
import { routes } from './routes.js';

/** Lifetime of ID tokens, in seconds; retired keys stay published at least this long. */
export const ID_TOKEN_TTL = 3600;

export interface ConfigurationDependencies {
  readonly config: Config;
  readonly stores: Stores;
  /** Private signing keys, the signing (`current`) key first. */
  readonly signingKeys: readonly PrivateJwk[];
  readonly cookieKeys: readonly string[];
  /** Client metadata kept between requests (absent: every lookup reads the database). */
  readonly clients?: ClientCache | undefined;
  readonly resolveResourceServer: ResourceServerResolver;
  /** Fetches the key sets of private_key_jwt clients registered with a jwks_uri (one per process). */
  readonly clientJwks: ClientJwksFetcher;
}

/**
 * A user's standard claims (OpenID Connect Core §5.1); the engine keeps those of the granted
 * scopes (`claims` below). Users have no display name, so there is no `name`. `email_verified`
 * is false: an administrator types the address (`users create --email`) and Sigil never checks
 * that the user receives mail there, so a relying party that needs a verified address verifies it.
 */
export function userClaims(user: UserRecord): AccountClaims {
  return {
    sub: user.id,
    preferred_username: user.username,
    updated_at: Math.floor(user.updatedAt.getTime() / 1000),
    ...(user.email === null ? {} : { email: user.email, email_verified: false }),
  };
}

/** The account and claims of a user, or none for a missing or disabled user. */
function accountFinder(userFor: (ctx: object, id: string) => Promise<UserRecord | undefined>): Configuration['findAccount'] {
  return async (ctx, id) => {
    const user = await userFor(ctx, id);
    if (user === undefined || user.disabled) return undefined;
    return { accountId: user.id, claims: () => userClaims(user) };
  };
}

/**
 * RFC 9068 tokens carry roles: a client's for client credentials, a user's (read afresh on
 * every issue, so refreshes pick up role changes) otherwise, and a user token its grant id.
 */
function tokenClaims(userFor: (ctx: object, id: string) => Promise<UserRecord | undefined>): Configuration['extraTokenClaims'] {
  return async (ctx: KoaContextWithOIDC, token) => {
    if (token.kind === 'ClientCredentials') {
      return { roles: ctx.oidc.client === undefined ? [] : clientRoles(ctx.oidc.client) };
    }
    const user = token.accountId === undefined ? undefined : await userFor(ctx, token.accountId);
    return {
      roles: [...(user?.roles ?? [])],
      // lets introspection tell when the grant behind a user token was revoked (RFC 7662)
      ...(token.grantId === undefined ? {} : { grant_id: token.grantId }),
      // RFC 8693 §4.1: who acts on the user's behalf, for a token exchange's token
      ...actClaimOf(token),
    };
  };
}

/** Lifetimes of what the engine issues and stores, in seconds. */
function lifetimes(config: Config): NonNullable<Configuration['ttl']> {
  // a client registered with --access-token-ttl gets its own lifetime, on every grant
  const accessTokenTtl = (_ctx: unknown, _token: unknown, client?: Parameters<typeof clientAccessTokenTtl>[0]) => clientAccessTokenTtl(client) ?? config.accessTokenTtl;
  return {
    AccessToken: accessTokenTtl,
    ClientCredentials: accessTokenTtl,
    AuthorizationCode: 60,
    IdToken: ID_TOKEN_TTL,
    Interaction: 600,
    Session: 14 * 24 * 3600,
    Grant: config.refreshTokenTtl,
    // absolute lifetime (RFC 9700 §4.14.2): a rotated refresh token lives only until the
    // first one of its chain (iiat) is REFRESH_TOKEN_TTL old
    RefreshToken: (_ctx, token) => {
      const now = Math.floor(Date.now() / 1000);
      const first = typeof token.iiat === 'number' ? token.iiat : now;
      return Math.max(1, first + config.refreshTokenTtl - now);
    },
  };
}

/** oidc-provider options. Each non-default key says why it is set. */
export function providerConfiguration({ config, stores, signingKeys, cookieKeys, clients, resolveResourceServer, clientJwks }: ConfigurationDependencies): Configuration {
  const corsOrigins = new Set(config.corsOrigins);
  // one read of a user per request: the engine asks for the account and for the token's roles
  // separately (and a refresh token brings its user along: see request-read-ahead.ts)
  const userFor = (ctx: object, id: string): Promise<UserRecord | undefined> => {
    const { users } = readAheadOf(ctx);
    let user = users.get(id);
    if (user === undefined) users.set(id, (user = findUser(stores.users, id)));
    return user;
  };
  return {
    adapter: adapterFactory(stores.payloads, (id) => loadClientMetadata(stores.clients, id), clients, config.refreshTokenRetryWindow),
    // never the engine's built-in development keystore: our keys only
    jwks: { keys: signingKeys.map((key) => ({ ...key })) },
    cookies: {
      keys: [...cookieKeys],
      long: { signed: true, httpOnly: true, sameSite: 'lax' },
      short: { signed: true, httpOnly: true, sameSite: 'lax' },
    },
    routes,
    // RFC 9700 §2.1.2: the authorization code flow only, no implicit or hybrid
    responseTypes: ['code'],
    // RFC 9700 §2.1.1: PKCE for every authorization request; the engine accepts S256 only
    pkce: { required: () => true },
    // secrets are SHA-256 digests at rest, so no HMAC-based client auth (client-authentication.ts)
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'none', 'private_key_jwt'],
    enabledJWA: {
      idTokenSigningAlgValues: ['RS256'],
      userinfoSigningAlgValues: ['RS256'],
      introspectionSigningAlgValues: ['RS256'],
      authorizationSigningAlgValues: ['RS256'],
      // private_key_jwt assertions (RFC 7523): asymmetric algorithms only, never HS* or none
      clientAuthSigningAlgValues: [...CLIENT_ASSERTION_ALGORITHMS],
      // the engine's default proof algorithms, named so that discovery's
      // dpop_signing_alg_values_supported and the guard's default say the same
      dPoPSigningAlgValues: ['ES256', 'Ed25519', 'EdDSA'],
    },
    // the engine's default, named: Sigil's own assertion checks use the same (client-assertions.ts)
    clockTolerance: CLOCK_TOLERANCE_S,
    // RFC 7523 §3 sets no bound on an assertion's lifetime; Sigil's is MAX_ASSERTION_LIFETIME_S
    assertJwtClientAuthClaimsAndHeader: assertShortLived,
    // the engine's only outgoing requests, for clients' jwks_uri: Sigil's timeout, size limit,
    // URL rule and refetch floor (client-jwks.ts)
    fetch: (input) => clientJwks.engineFetch(input instanceof Request ? input.url : input),
    // RFC 9700 §2.6: cross-origin calls with client authentication only from the allowlist
    clientBasedCORS: (_ctx, origin) => corsOrigins.has(origin),
    extraClientMetadata: { properties: EXTRA_CLIENT_METADATA },
    extraTokenClaims: tokenClaims(userFor),
    claims: {
      openid: ['sub'],
      // `name` is listed for when users have one: the engine leaves out what findAccount does not give
      profile: ['preferred_username', 'name', 'updated_at'],
      email: ['email', 'email_verified'],
    },
    // the ID token carries the claims of the granted scopes too, not only userinfo: relying
    // parties (express-openid-connect's req.oidc.user, for one) read the user from the ID token
    conformIdTokenClaims: false,
    findAccount: accountFinder(userFor),
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      // stored tokens (refresh tokens): only their own client; JWT access tokens and API keys: introspection.ts
      introspection: { enabled: true, allowedPolicy: (_ctx, client, token) => introspectionAllowed(client, token) },
      revocation: { enabled: true, allowedPolicy: (_ctx, client, token) => revocationAllowed(client, token) },
      // RFC 9449: a token request with a DPoP proof gets tokens bound to the proof's key (cnf.jkt),
      // which the guard accepts only with a fresh proof; the proofs' jtis are recorded in the
      // database, atomically (replay-detection.ts). No server nonces at the token endpoint.
      dPoP: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource,
        getResourceServerInfo: resolveResourceServer,
        useGrantedResource,
      },
      userinfo: { enabled: true },
      rpInitiatedLogout: { enabled: true, logoutSource, postLogoutSuccessSource },
    },
    loadExistingGrant,
    renderError,
    // RFC 9700 §4.14.2: every use of a refresh token replaces it; a spent one revokes the grant
    rotateRefreshToken: true,
    // refresh tokens for every client registered with the refresh_token grant (not only offline_access)
    issueRefreshToken: (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    ttl: lifetimes(config),
  };
}
