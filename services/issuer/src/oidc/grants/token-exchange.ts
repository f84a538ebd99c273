import { createLocalJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type Provider from 'oidc-provider';
import { errors, type Client, type KoaContextWithOIDC } from 'oidc-provider';

import { TOKEN_EXCHANGE } from '../../domain/clients.js';
import type { RevocationStore } from '../../domain/revocations.js';
import { findUser, type UserStore } from '../../domain/users.js';
import { splitScope } from '../../domain/validation.js';
import { publicJwk, type PrivateJwk } from '../../keys/key-store.js';
import type { PayloadStore } from '../../storage/payloads.js';
import { clientAccessTokenTtl, exchangeTargets, registeredResources } from '../client-metadata.js';
import { accessTokenWithdrawn } from '../introspection.js';
import { readAheadOf } from '../request-read-ahead.js';
import { jwtResourceServer } from '../resource-indicators.js';
import type { ResourceScopes } from '../resource-scopes.js';
import { audienceScopes, grantedScope } from '../scope-policy.js';

/**
 * OAuth 2.0 Token Exchange (RFC 8693), for delegation: a resource service that was sent a
 * person's access token asks, as its own client, for a token for another service it calls on
 * that person's behalf. The new token has the same `sub`, the person's roles, no scope its
 * subject token lacks, and `act` naming the service (RFC 8693 §4.1), nested when the subject
 * token was itself exchanged. It stands on the subject token's grant: it carries the same
 * `grant_id`, and the grant's revocation is told to the new token's audience as well
 * (`PayloadStore.recordExchangeAudience`). Registered like the password grant: `grantType`,
 * `parameters`, `handler` (docs/engine.md#token-exchange).
 */
export const grantType = TOKEN_EXCHANGE;

/** RFC 8693 §3: the one token type this grant takes and issues. */
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

/**
 * Parameters the engine keeps for this grant (any other is stripped). The ones Sigil does not
 * serve (`actor_token`, `actor_token_type`, `audience`) are listed so that they are refused
 * rather than silently dropped: a caller who sends them expects them to count.
 */
export const parameters = [
  'subject_token',
  'subject_token_type',
  'requested_token_type',
  'actor_token',
  'actor_token_type',
  'audience',
  'scope',
  'resource',
];

/** Most actors a delegation chain may name (the exchanging client included): each exchange adds one. */
export const MAX_ACTORS = 8;

/** One party of a delegation chain (RFC 8693 §4.1): the current actor, and who acted before it. */
export interface Actor {
  readonly sub: string;
  readonly act?: Actor;
}

export interface TokenExchangeDependencies {
  readonly issuer: string;
  /** Every published key: a subject token may be signed by a key retired since. */
  readonly signingKeys: readonly PrivateJwk[];
  readonly payloads: Pick<PayloadStore, 'grantAlive' | 'recordExchangeAudience'>;
  readonly revocations: Pick<RevocationStore, 'isRevoked'>;
  readonly users: UserStore;
  readonly resourceScopes: ResourceScopes;
  /** ACCESS_TOKEN_TTL, for clients without their own lifetime. */
  readonly accessTokenTtl: number;
}

/** The `act` claim each exchanged token will carry, by the token the engine is about to sign (read by `extraTokenClaims`). */
const actors = new WeakMap<object, Actor>();

/** The `act` claim of an access token this grant is minting, if `token` is one (configuration.ts's `extraTokenClaims`). */
export function actClaimOf(token: object): { act: Actor } | undefined {
  const act = actors.get(token);
  return act === undefined ? undefined : { act };
}

/** A delegation chain as a token carries it, or undefined when `value` is not one (or is longer than MAX_ACTORS - 1). */
export function actorChain(value: unknown, room = MAX_ACTORS - 1): Actor | undefined {
  if (room <= 0 || typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const { sub, act } = value as { sub?: unknown; act?: unknown };
  if (typeof sub !== 'string' || sub === '') return undefined;
  if (act === undefined) return { sub };
  const prior = actorChain(act, room - 1);
  return prior === undefined ? undefined : { sub, act: prior };
}

/** A single-valued string parameter, or undefined when absent. */
function single(ctx: KoaContextWithOIDC, name: string): string | undefined {
  const value = ctx.oidc.params?.[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** RFC 8693 §2.1's request members this grant cannot serve: refused (§2.2.2 `invalid_request`), never ignored. */
function checkRequestShape(ctx: KoaContextWithOIDC): string {
  const subjectToken = single(ctx, 'subject_token');
  if (subjectToken === undefined) throw new errors.InvalidRequest('subject_token is required');
  const subjectType = single(ctx, 'subject_token_type');
  if (subjectType === undefined) throw new errors.InvalidRequest('subject_token_type is required');
  if (subjectType !== ACCESS_TOKEN_TYPE) throw new errors.InvalidRequest(`unsupported subject_token_type: only ${ACCESS_TOKEN_TYPE} is accepted`);
  const requested = single(ctx, 'requested_token_type');
  if (requested !== undefined && requested !== ACCESS_TOKEN_TYPE) {
    throw new errors.InvalidRequest(`unsupported requested_token_type: only ${ACCESS_TOKEN_TYPE} is issued`);
  }
  if (single(ctx, 'actor_token') !== undefined || single(ctx, 'actor_token_type') !== undefined) {
    throw new errors.InvalidRequest('actor_token is not supported: the acting party is the authenticated client');
  }
  if (single(ctx, 'audience') !== undefined) throw new errors.InvalidRequest('audience is not supported: name the target service with resource (RFC 8707)');
  return subjectToken;
}

/**
 * The resource the new token is for (RFC 8707 §2, RFC 8693 §2.1): one of the client's
 * `--may-exchange-for` targets, its first when none is named; a client with none may exchange
 * for nothing.
 */
function targetResource(ctx: KoaContextWithOIDC, client: Client): string {
  const requested = ctx.oidc.params?.['resource'];
  if (Array.isArray(requested) && requested.length > 1) {
    throw new errors.InvalidTarget('only a single resource indicator value is supported for this grant type');
  }
  const allowed = exchangeTargets(client);
  const resource = (Array.isArray(requested) ? requested[0] : requested) ?? allowed[0];
  if (typeof resource !== 'string') throw new errors.InvalidTarget('this client may exchange tokens for no resource; register one with --may-exchange-for');
  if (!allowed.includes(resource)) throw new errors.InvalidTarget('this client may not exchange tokens for this resource (--may-exchange-for)');
  return resource;
}

/** `invalid_grant` (RFC 8693 §2.2.2: the subject token is invalid) with a description the client sees. */
function invalidSubject(description: string): errors.InvalidGrant {
  const error = new errors.InvalidGrant();
  Object.assign(error, { error_description: description });
  return error;
}

/** The subject token's claims when this issuer signed it and it has not expired; `invalid_grant` otherwise. */
async function verifiedSubject(verify: (token: string) => Promise<JWTPayload>, token: string): Promise<JWTPayload> {
  try {
    return await verify(token);
  } catch (error) {
    if (error instanceof joseErrors.JWTExpired) throw invalidSubject('subject_token has expired');
    throw invalidSubject('subject_token is not an access token of this issuer');
  }
}

/**
 * What the subject token must be, beyond a valid signature: "issued for itself" (its audience
 * is one of the exchanging client's own resources: the token was sent to this service), a
 * person's token under a grant (a client credentials token speaks for no one else, and has no
 * grant whose end could take the new token with it), with a well-formed delegation chain.
 */
function checkSubject(claims: JWTPayload, client: Client): { sub: string; grantId: string; act: Actor | undefined } {
  const audience = Array.isArray(claims.aud) && claims.aud.length === 1 ? claims.aud[0] : claims.aud;
  if (typeof audience !== 'string' || !registeredResources(client).includes(audience)) {
    throw invalidSubject('subject_token was not issued for this client\'s resources (--resource): only a token sent to this service can be exchanged');
  }
  const grantId = claims['grant_id'];
  const sub = claims.sub;
  if (typeof grantId !== 'string' || typeof sub !== 'string' || sub === claims['client_id']) {
    throw invalidSubject('only a person\'s access token can be exchanged: this one was issued by client credentials');
  }
  const prior = claims['act'];
  const act = prior === undefined ? undefined : actorChain(prior);
  if (prior !== undefined && act === undefined) throw invalidSubject(`subject_token's delegation chain (act) is malformed or longer than ${MAX_ACTORS - 1} actors`);
  return { sub, grantId, act };
}

/**
 * The new token's scope: what was asked for (by default everything) of the subject token's
 * scopes that the target's tokens may carry (`audienceScopes`, the policy of every grant). A
 * scope the subject token lacks is a widening, refused (RFC 6749 §5.2 `invalid_scope`); one it
 * has that the target does not take is left out, as the direct grants leave out another
 * audience's scopes.
 */
async function exchangedScope(ctx: KoaContextWithOIDC, resourceScopes: ResourceScopes, subjectScope: unknown, target: string): Promise<string> {
  const held = typeof subjectScope === 'string' ? splitScope(subjectScope) : [];
  const allowed = audienceScopes(held, target, await resourceScopes.declared()).join(' ');
  const requested = splitScope(String(ctx.oidc.params?.['scope'] ?? ''));
  if (requested.length === 0) return allowed;
  const widened = requested.find((scope) => !held.includes(scope));
  if (widened !== undefined) throw new errors.InvalidScope('requested scope is not in the subject token: an exchange cannot widen it', widened);
  return grantedScope(requested, allowed);
}

export function handler(provider: Provider, dependencies: TokenExchangeDependencies) {
  const { issuer, payloads, revocations, users, resourceScopes, accessTokenTtl } = dependencies;
  const keySet = createLocalJWKSet({ keys: dependencies.signingKeys.map((key) => ({ ...publicJwk(key) })) });
  const verify = async (token: string) =>
    (await jwtVerify(token, keySet, { issuer, typ: 'at+jwt', algorithms: ['RS256'], requiredClaims: ['exp', 'iat', 'jti', 'sub', 'client_id', 'aud'] })).payload;

  return async function tokenExchangeHandler(ctx: KoaContextWithOIDC): Promise<void> {
    const client = ctx.oidc.client;
    if (client === undefined) throw new errors.InvalidClient('client not found');
    const subjectToken = checkRequestShape(ctx);
    const target = targetResource(ctx, client);

    const claims = await verifiedSubject(verify, subjectToken);
    const { sub, grantId, act } = checkSubject(claims, client);
    // introspection's rule: revoked, its grant ended, or its client disabled since
    if (await accessTokenWithdrawn({ payloads, revocations }, claims)) throw invalidSubject('subject_token has been revoked');
    const scope = await exchangedScope(ctx, resourceScopes, claims['scope'], target);
    // one read of the person, shared with extraTokenClaims (roles)
    const { users: read } = readAheadOf(ctx);
    if (!read.has(sub)) read.set(sub, findUser(users, sub));
    const user = await read.get(sub);
    if (user === undefined || user.disabled) throw invalidSubject('subject_token\'s user is disabled or deleted');
    // after every check: a grant that ends from now on is told to the target's services too
    if (!(await payloads.recordExchangeAudience(grantId, target))) throw invalidSubject('subject_token\'s grant has ended');

    // never outlives its subject token (RFC 8693 §2.2.1 leaves the lifetime to the server)
    const now = Math.floor(Date.now() / 1000);
    const exp = Math.min(now + (clientAccessTokenTtl(client) ?? accessTokenTtl), Number(claims.exp));
    const accessToken = new provider.AccessToken({ accountId: sub, client, grantId, gty: grantType, scope, exp, expiresIn: Math.max(1, exp - now) });
    accessToken.resourceServer = new provider.ResourceServer(target, jwtResourceServer(target, scope));
    actors.set(accessToken, { sub: client.clientId, ...(act === undefined ? {} : { act }) });
    ctx.body = {
      access_token: await accessToken.save(),
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: accessToken.expiration,
      scope: scope || undefined,
    };
  };
}
