import { errors, type Client, type KoaContextWithOIDC, type ResourceServer } from 'oidc-provider';

import { splitScope } from '../domain/validation.js';
import { allowedScopes, registeredResources } from './client-metadata.js';
import type { ResourceScopes } from './resource-scopes.js';
import { applyDirectGrantScope, audienceScopes, isDirectGrant, OIDC_SCOPES } from './scope-policy.js';

/** Why a client with no registered resource gets no token (RFC 8707 §2 `invalid_target`). */
const NO_RESOURCE = 'this client has no registered resource (audience) to issue an access token for; register one with --resource';

/** Whether a request's `scope` parameter is there and names OpenID scopes only. */
function asksForOidcScopesOnly(ctx: KoaContextWithOIDC): boolean {
  const scope = ctx.oidc.params?.['scope'];
  const scopes = typeof scope === 'string' ? splitScope(scope) : [];
  return scopes.length > 0 && scopes.every((name) => OIDC_SCOPES.has(name));
}

/**
 * RFC 8707: with no `resource` parameter the audience is the client's first registered
 * resource. An authorization request for OpenID scopes only gets a token for the userinfo
 * endpoint instead; any other request of a client with no resource is refused.
 */
export function defaultResource(ctx: KoaContextWithOIDC, client: Client): string | undefined {
  if (!isDirectGrant(ctx) && asksForOidcScopesOnly(ctx)) return undefined;
  const resource = registeredResources(client)[0];
  if (resource === undefined) throw new errors.InvalidTarget(NO_RESOURCE);
  return resource;
}

/**
 * Whether a token request with no `resource` parameter gets a token for the resource granted at
 * authorization (RFC 8707 §2.2): yes, unless its `scope` parameter names OpenID scopes only (a
 * refresh with `scope=openid profile email`). That one gets a token for the userinfo endpoint,
 * the engine's own rule for such requests, so that a web app that signed in for an API's scope
 * too can read userinfo without its API token being valid there, nor anywhere but that API.
 */
export function useGrantedResource(ctx: KoaContextWithOIDC): boolean {
  return !asksForOidcScopesOnly(ctx);
}

export type ResourceServerResolver = (ctx: KoaContextWithOIDC, indicator: string, client: Client) => Promise<ResourceServer>;

/**
 * Resolves a resource indicator to the resource server the token is minted for: only the
 * client's registered resources are allowed (RFC 8707 §2, RFC 9700 §2.3), every token for one
 * is an RFC 9068 JWT with that single audience, and its `scope` is the one policy of
 * scope-policy.ts ({@link audienceScopes}), which the engine and the password grant intersect
 * with what was asked for or granted. For the direct grants it also checks the request's scope.
 */
export function resourceServerResolver(resourceScopes: ResourceScopes): ResourceServerResolver {
  return async (ctx, indicator, client) => {
    if (!registeredResources(client).includes(indicator)) {
      throw new errors.InvalidTarget('resource indicator is not registered for this client');
    }
    const registered = allowedScopes(client);
    const audience = audienceScopes(registered, indicator, await resourceScopes.declared());
    if (isDirectGrant(ctx)) applyDirectGrantScope(ctx, new Set(registered), audience);
    return jwtResourceServer(indicator, audience.join(' '));
  };
}

/** A resource server whose tokens are RFC 9068 JWTs (RS256) with the single audience `audience`, carrying at most `scope`. */
export function jwtResourceServer(audience: string, scope: string): ResourceServer {
  return { scope, audience, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } };
}
