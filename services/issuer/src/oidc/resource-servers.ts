import { errors, type Client, type KoaContextWithOIDC, type ResourceServer } from 'oidc-provider';

import { splitScope } from '../domain/validation.js';

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

/** The resources (audiences) a client registered, in registration order. */
export function registeredResources(client: Client): string[] {
  return stringList(client['resources']);
}

/** Every scope the client is registered for (resource scopes and OpenID scopes). */
export function allowedScopes(client: Client): string[] {
  return stringList(client['allowed_scopes']);
}

/** The roles a client carries into its client-credentials tokens. */
export function clientRoles(client: Client): string[] {
  return stringList(client['roles']);
}

/** Scopes the engine itself understands (OpenID Connect Core §5.4 and §11). */
export const OIDC_SCOPES: ReadonlySet<string> = new Set(['openid', 'offline_access', 'profile', 'email']);

/**
 * RFC 8707: with no `resource` parameter the audience is the client's first registered
 * resource. An authorization request for OpenID scopes only gets a token for the userinfo
 * endpoint instead.
 */
export function defaultResource(ctx: KoaContextWithOIDC, client: Client): string | undefined {
  const params = ctx.oidc.params ?? {};
  const grantType = params['grant_type'];
  if (grantType !== 'client_credentials' && grantType !== 'password') {
    const scopes = typeof params['scope'] === 'string' ? splitScope(params['scope']) : [];
    if (scopes.length > 0 && scopes.every((scope) => OIDC_SCOPES.has(scope))) return undefined;
  }
  return registeredResources(client)[0];
}

/**
 * Checks the scopes a client asks for at the token endpoint without a prior authorization
 * (client credentials, password). Asking for a scope outside
 * its registration is an error (RFC 6749 §5.2 `invalid_scope`), not a silent drop; asking for
 * none grants every scope it is registered for (RFC 6749 §3.3, a documented default).
 */
function applyClientScopePolicy(ctx: KoaContextWithOIDC, allowed: ReadonlySet<string>): void {
  const { params } = ctx.oidc;
  if (params === undefined) return;
  const requested = typeof params['scope'] === 'string' ? splitScope(params['scope']) : [];
  if (requested.length === 0) {
    params['scope'] = [...allowed].join(' ');
    return;
  }
  const refused = requested.find((scope) => !allowed.has(scope));
  if (refused !== undefined) {
    throw new errors.InvalidScope('requested scope is not allowed', refused);
  }
}

/**
 * Resolves a resource indicator to the resource server the token is minted for: only the
 * client's registered resources are allowed (RFC 8707 §2, RFC 9700 §2.3), and every token
 * for one is an RFC 9068 JWT with that single audience.
 */
export function resourceServerResolver(accessTokenTtl: number) {
  return (ctx: KoaContextWithOIDC, indicator: string, client: Client): ResourceServer => {
    if (!registeredResources(client).includes(indicator)) {
      throw new errors.InvalidTarget('resource indicator is not registered for this client');
    }
    const allowed = new Set(allowedScopes(client));
    const grantType = ctx.oidc.params?.['grant_type'];
    if (grantType === 'client_credentials' || grantType === 'password') {
      applyClientScopePolicy(ctx, allowed);
    }
    return {
      // what a token for this resource may carry: the client's scopes, without OpenID's own
      scope: [...allowed].filter((scope) => !OIDC_SCOPES.has(scope)).join(' '),
      audience: indicator,
      accessTokenTTL: accessTokenTtl,
      accessTokenFormat: 'jwt',
      jwt: { sign: { alg: 'RS256' } },
    };
  };
}
