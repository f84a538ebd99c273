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
 * The scopes a token for `resource` may carry for a client registered with `clientScopes`
 * (RFC 9700 §2.3 least privilege, RFC 9068 §2.2.3): never an OpenID scope, and only scopes of
 * that audience. A resource's scopes are those its own service client declares (a client with
 * no grant registered for it); for a resource nobody declares, any of the client's scopes that
 * no other resource declares. Every grant's token scope is the requested (or granted) scopes
 * within this set: the engine intersects for client credentials, code and refresh, and
 * {@link grantedScope} does for the grants Sigil adds.
 */
export function audienceScopes(clientScopes: Iterable<string>, resource: string, declared: ReadonlyMap<string, readonly string[]>): string[] {
  const own = declared.get(resource);
  let belongs: (scope: string) => boolean;
  if (own === undefined) {
    // only for an undeclared resource: every declared scope (on the token path of most requests, not built)
    const ofOthers = new Set([...declared.values()].flat());
    belongs = (scope) => !ofOthers.has(scope);
  } else belongs = (scope) => own.includes(scope);
  return [...new Set(clientScopes)].filter((scope) => !OIDC_SCOPES.has(scope) && belongs(scope));
}

/**
 * The declared scopes (resource → scopes) with what each resource may pass on by token
 * exchange (RFC 8693): a resource whose services may exchange the tokens they are sent for
 * another resource's (`targets`, their `--may-exchange-for`) also declares that resource's
 * scopes, and those of the resources it may pass on to in turn. An exchanged token carries no
 * scope its subject token lacks, so a token can only hand on what it carries: a person's token
 * for orders-api carries `reports:read` when orders-api may ask reports-api for them, and its
 * exchange for reports-api keeps just that. Only declared resources are widened; `fixed` ones
 * (the issuer's own audiences) are neither widened nor passed on.
 */
export function withDelegatedScopes(
  declared: ReadonlyMap<string, readonly string[]>,
  targets: ReadonlyMap<string, readonly string[]>,
  fixed: ReadonlySet<string> = new Set(),
): Map<string, string[]> {
  const widened = new Map<string, string[]>();
  for (const [resource, own] of declared) {
    const scopes = new Set(own);
    const seen = new Set([resource]);
    const pending = fixed.has(resource) ? [] : [...(targets.get(resource) ?? [])];
    for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
      if (seen.has(next) || fixed.has(next)) continue;
      seen.add(next);
      for (const scope of declared.get(next) ?? []) scopes.add(scope);
      pending.push(...(targets.get(next) ?? []));
    }
    widened.set(resource, [...scopes]);
  }
  return widened;
}

/** The scope a token carries: what was asked for (or granted) within the audience's scopes, in the order asked. */
export function grantedScope(requested: Iterable<string>, audience: string): string {
  const allowed = new Set(splitScope(audience));
  return [...new Set(requested)].filter((scope) => allowed.has(scope)).join(' ');
}

/**
 * The scopes of a direct grant (RFC 6749 §3.3): asking for a scope outside the client's
 * registration is an error (§5.2 `invalid_scope`), not a silent drop; asking for none asks
 * for every scope the client may have for the audience (a documented default). Sets the
 * request's `scope`, which the token then carries within the audience's scopes.
 */
export function applyDirectGrantScope(ctx: KoaContextWithOIDC, registered: ReadonlySet<string>, audience: readonly string[]): void {
  const { params } = ctx.oidc;
  if (params === undefined) return;
  const requested = typeof params['scope'] === 'string' ? splitScope(params['scope']) : [];
  if (requested.length === 0) {
    params['scope'] = audience.join(' ');
    return;
  }
  const refused = requested.find((scope) => !registered.has(scope));
  if (refused !== undefined) {
    throw new errors.InvalidScope('requested scope is not allowed', refused);
  }
}
