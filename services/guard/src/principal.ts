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
  /**
   * Who acts on `sub`'s behalf (RFC 8693 §4.1 `act`): set for an exchanged token, where `sub`
   * is the person and `act.sub` the client of the service that exchanged it, with earlier
   * actors nested in `act.act`. Undefined for a token its caller was issued directly, and for
   * an API key. Decide on `sub` and the current actor (`act.sub`); earlier actors are for the
   * record only (RFC 8693 §4.1).
   */
  readonly act?: Actor;
}

/**
 * One party of a delegation chain: its `sub` (a client id, for Sigil's exchanges) and the
 * actor before it, if any.
 *
 * @example
 * ```ts
 * const chain: string[] = [];
 * for (let actor = req.auth?.act; actor !== undefined; actor = actor.act) chain.push(actor.sub);
 * ```
 */
export interface Actor {
  readonly sub: string;
  readonly act?: Actor;
}

/** Most actors a chain may name; a longer one is refused as malformed (Sigil's issuer mints at most 8). */
export const MAX_ACTORS = 16;

/**
 * The delegation chain of an `act` claim, or null when the value is not one (not an object
 * with a non-empty string `sub`, an `act` that is not one either, or more than MAX_ACTORS deep).
 *
 * @example
 * ```ts
 * actorChain({ sub: 'orders-api', act: { sub: 'gateway' } }); // { sub: 'orders-api', act: { sub: 'gateway' } }
 * ```
 */
export function actorChain(value: unknown, room = MAX_ACTORS): Actor | null {
  if (room <= 0 || typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const { sub, act } = value as { sub?: unknown; act?: unknown };
  if (typeof sub !== 'string' || sub === '') return null;
  if (act === undefined) return { sub };
  const prior = actorChain(act, room - 1);
  return prior === null ? null : { sub, act: prior };
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
  deepFreeze(principal.act);
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
