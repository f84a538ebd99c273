import { errors, type KoaContextWithOIDC } from 'oidc-provider';

import { splitScope } from '../domain/validation.js';

/** Scopes the engine itself understands (OpenID Connect Core §5.4 and §11). */
export const OIDC_SCOPES: ReadonlySet<string> = new Set(['openid', 'offline_access', 'profile', 'email']);

/** Grants whose scope is decided at the token endpoint, without a prior authorization. */
const DIRECT_GRANTS: ReadonlySet<unknown> = new Set(['client_credentials', 'password']);

/** Whether the token request in `ctx` is one of the direct grants (client credentials, password). */
export function isDirectGrant(ctx: KoaContextWithOIDC): boolean {
  return DIRECT_GRANTS.has(ctx.oidc.params?.['grant_type']);
}

/**
 * The scopes of a direct grant (RFC 6749 §3.3): asking for a scope outside the client's
 * registration is an error (§5.2 `invalid_scope`), not a silent drop; asking for none grants
 * every scope it is registered for (a documented default). Sets the request's `scope`.
 */
export function applyDirectGrantScope(ctx: KoaContextWithOIDC, allowed: ReadonlySet<string>): void {
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

/** What a token for a resource may carry: the client's scopes, without OpenID's own (RFC 9068 §2.2.3). */
export function resourceScopes(allowed: Iterable<string>): string {
  return [...allowed].filter((scope) => !OIDC_SCOPES.has(scope)).join(' ');
}
