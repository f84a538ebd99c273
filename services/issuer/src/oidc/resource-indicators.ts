import { errors, type Client, type KoaContextWithOIDC, type ResourceServer } from 'oidc-provider';

import { splitScope } from '../domain/validation.js';
import { allowedScopes, registeredResources } from './client-metadata.js';
import { applyDirectGrantScope, isDirectGrant, OIDC_SCOPES, resourceScopes } from './scope-policy.js';

/**
 * RFC 8707: with no `resource` parameter the audience is the client's first registered
 * resource. An authorization request for OpenID scopes only gets a token for the userinfo
 * endpoint instead.
 */
export function defaultResource(ctx: KoaContextWithOIDC, client: Client): string | undefined {
  if (!isDirectGrant(ctx)) {
    const scope = ctx.oidc.params?.['scope'];
    const scopes = typeof scope === 'string' ? splitScope(scope) : [];
    if (scopes.length > 0 && scopes.every((name) => OIDC_SCOPES.has(name))) return undefined;
  }
  return registeredResources(client)[0];
}

export type ResourceServerResolver = (ctx: KoaContextWithOIDC, indicator: string, client: Client) => ResourceServer;

/**
 * Resolves a resource indicator to the resource server the token is minted for: only the
 * client's registered resources are allowed (RFC 8707 §2, RFC 9700 §2.3), and every token
 * for one is an RFC 9068 JWT with that single audience. For the direct grants it also applies
 * the scope policy (scope-policy.ts).
 */
export function resourceServerResolver(accessTokenTtl: number): ResourceServerResolver {
  return (ctx, indicator, client) => {
    if (!registeredResources(client).includes(indicator)) {
      throw new errors.InvalidTarget('resource indicator is not registered for this client');
    }
    const allowed = new Set(allowedScopes(client));
    if (isDirectGrant(ctx)) applyDirectGrantScope(ctx, allowed);
    return {
      scope: resourceScopes(allowed),
      audience: indicator,
      accessTokenTTL: accessTokenTtl,
      accessTokenFormat: 'jwt',
      jwt: { sign: { alg: 'RS256' } },
    };
  };
}
