import type { AdapterPayload } from 'oidc-provider';

import type { UserRecord } from '../domain/users.js';

/**
 * What one engine request has already read, so that the engine's next lookups need no query:
 * a refresh token is read together with its grant and its user (with roles), which the engine
 * asks for next (`Grant.find`, `findAccount`, `extraTokenClaims`); a user is read once however
 * often the engine asks for it. Keyed by the engine's koa context (see engine-request.ts).
 */
export interface ReadAhead {
  /** Grants read along with a refresh token, by id (`undefined`: no such grant, or expired); each served once. */
  readonly grants: Map<string, AdapterPayload | undefined>;
  /** Users with their roles, by id. */
  readonly users: Map<string, Promise<UserRecord | undefined>>;
}

const byRequest = new WeakMap<object, ReadAhead>();

/**
 * The read-ahead of the request `ctx`, created on first use.
 *
 * @example
 * ```ts
 * const user = readAheadOf(ctx).users.get(accountId);
 * ```
 */
export function readAheadOf(ctx: object): ReadAhead {
  let reads = byRequest.get(ctx);
  if (reads === undefined) {
    reads = { grants: new Map(), users: new Map() };
    byRequest.set(ctx, reads);
  }
  return reads;
}
