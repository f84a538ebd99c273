/** Who a request acts for.
 *
 * @example
 * ```ts
 * if (req.auth?.kind === 'client') auditMachineCall(req.auth.sub);
 * ```
 */
export type PrincipalKind = 'user' | 'client' | 'api_key';

/**
 * The authenticated caller, the same shape for a user token, a client-credentials token and an
 * API key. Identify a caller by `issuer` + `sub` (RFC 9068 §4).
 *
 * @example
 * ```ts
 * app.get('/me', guard.requireAuth(), (req, res) => {
 *   const { kind, sub, scopes, roles } = req.auth!;
 *   res.json({ kind, sub, scopes, roles });
 * });
 * ```
 */
export interface Principal {
  /** `user` (a person's token), `client` (client credentials: `sub` is the client id) or `api_key`. */
  readonly kind: PrincipalKind;
  /** The user id, the client id, or the API key id. */
  readonly sub: string;
  /** The OAuth client the token was issued to; undefined for an API key. */
  readonly clientId: string | undefined;
  readonly scopes: readonly string[];
  readonly roles: readonly string[];
  readonly issuer: string;
  /** When the credential stops being valid, if it expires. */
  readonly expiresAt: Date | undefined;
  /** The verified claims (token) or the introspection answer (API key). */
  readonly claims: Readonly<Record<string, unknown>>;
  /**
   * Present when the token is sender-constrained (DPoP, RFC 9449): the thumbprint (RFC 7638)
   * of the key it is bound to, `cnf.jkt`, whose holder signed this request's proof. Absent
   * for bearer tokens and API keys.
   */
  readonly confirmation?: { readonly jkt: string };
}

export function stringArray(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

export function scopeList(value: unknown): string[] {
  return typeof value === 'string' ? value.split(' ').filter((scope) => scope !== '') : [];
}

/**
 * Freezes a principal, its lists and its claims (deeply), so that a principal served from a
 * cache to many requests cannot be altered by one of them.
 *
 * @example
 * ```ts
 * const principal = frozenPrincipal({ kind: 'user', sub, clientId, scopes, roles, issuer, expiresAt, claims: payload });
 * ```
 */
export function frozenPrincipal(principal: Principal): Principal {
  deepFreeze(principal.claims);
  if (principal.confirmation !== undefined) Object.freeze(principal.confirmation);
  Object.freeze(principal.scopes);
  Object.freeze(principal.roles);
  return Object.freeze(principal);
}

/** Freezes a JSON value (claims, an introspection answer) and everything in it. */
function deepFreeze(value: unknown): void {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const item of Object.values(value)) deepFreeze(item);
}
