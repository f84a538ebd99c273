import Provider, { type AdapterPayload } from 'oidc-provider';

import type { UserRecord } from '../domain/users.js';

/**
 * What the engine's storage calls have read, or put off, within one engine request. It lets
 * a refresh make two database round trips instead of five:
 *
 * 1. the refresh token is read together with its grant and its user (with roles), which the
 *    engine asks for next (`Grant.find`, `findAccount`, `extraTokenClaims`);
 * 2. the old token's consumption and its successor's insert are one statement (see
 *    `KnexPayloadAdapter.consume`), so that of two requests racing with one token exactly one
 *    gets a successor, and no crash can leave a consumed token without one.
 *
 * Keyed by the engine's koa context (`Provider.ctx` inside the engine's routes, the `ctx`
 * argument of its helpers), so nothing outlives or crosses a request.
 */
export interface RequestReads {
  /** Grants read along with a refresh token, by id (`undefined`: no such grant, or expired). */
  readonly grants: Map<string, AdapterPayload | undefined>;
  /** Users with their roles, by id, read once per request. */
  readonly users: Map<string, Promise<UserRecord | undefined>>;
  /** A refresh token whose consumption waits for the insert of its successor. */
  pendingConsume: string | undefined;
}

const byRequest = new WeakMap<object, RequestReads>();

/**
 * The reads of the request `ctx`, created on first use.
 *
 * @example
 * ```ts
 * const user = readsOf(ctx).users.get(accountId);
 * ```
 */
export function readsOf(ctx: object): RequestReads {
  let reads = byRequest.get(ctx);
  if (reads === undefined) {
    reads = { grants: new Map(), users: new Map(), pendingConsume: undefined };
    byRequest.set(ctx, reads);
  }
  return reads;
}

/**
 * The reads of the token request this code runs in, or `undefined` outside one (another
 * endpoint, the CLI, the sweeper, tests): a refresh token is only rotated there, by the
 * refresh_token grant, so no other code path ever has its consumption put off.
 */
export function currentReads(): RequestReads | undefined {
  const ctx = Provider.ctx;
  return ctx === undefined || ctx.oidc.route !== 'token' ? undefined : readsOf(ctx);
}

/** The reads of `ctx` if it has any, without creating them. */
export function existingReads(ctx: object): RequestReads | undefined {
  return byRequest.get(ctx);
}
