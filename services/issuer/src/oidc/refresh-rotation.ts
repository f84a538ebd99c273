import { errors } from 'oidc-provider';

import type { Logger } from '../logger.js';
import type { PayloadStore, PayloadToStore } from '../storage/payloads.js';
import type { KoaMiddleware } from './koa.js';
import { consumeSingleUse, refuseReuse } from './single-use.js';

/**
 * Refresh token rotation (RFC 9700 §4.14.2, RFC 6749 §6) as one storage operation. The engine
 * rotates a refresh token in two calls: it consumes the old token, then saves its successor.
 * This module is the only link between those calls and `PayloadStore.rotateRefreshToken`:
 *
 * 1. `deferConsumption` (from the adapter's `consume`, inside a token request) records the old
 *    token instead of consuming it;
 * 2. `saveRefreshToken` (from the adapter's `upsert`) then rotates: consumption and insert in
 *    one statement; when the old token was spent meanwhile, the grant is revoked and the
 *    request refused (`invalid_grant`), and no successor exists;
 * 3. `finishRotation`, after every engine request, consumes a token whose request ended
 *    without a successor (an error after the consumption), so nothing stays unconsumed.
 */
const pendingByRequest = new WeakMap<object, string>();

/**
 * Puts off consuming refresh token `id` to its successor's insert, inside a token request.
 * @returns false when there is no request to attach it to, or one is already pending: consume now
 */
export function deferConsumption(request: object | undefined, id: string): boolean {
  if (request === undefined || pendingByRequest.has(request)) return false;
  pendingByRequest.set(request, id);
  return true;
}

/** The refresh token whose consumption waits in `request` (for tests and the end of a request). */
export function pendingRotation(request: object): string | undefined {
  return pendingByRequest.get(request);
}

/** Stores a refresh token: the successor of a token put off in `request` (a rotation), or a new one. */
export async function saveRefreshToken(payloads: PayloadStore, request: object | undefined, token: PayloadToStore): Promise<void> {
  const predecessor = request === undefined ? undefined : pendingByRequest.get(request);
  if (request === undefined || predecessor === undefined) {
    await payloads.upsert(token);
    return;
  }
  pendingByRequest.delete(request);
  if (!(await payloads.rotateRefreshToken(predecessor, token))) await refuseReuse(payloads, 'RefreshToken', predecessor);
}

/** Consumes what `request` left pending (see the module comment). */
export async function finishRotation(payloads: PayloadStore, request: object): Promise<void> {
  const pending = pendingByRequest.get(request);
  if (pending === undefined) return;
  pendingByRequest.delete(request);
  await consumeSingleUse(payloads, 'RefreshToken', pending);
}

/**
 * The engine middleware that runs `finishRotation` after every request. The answer is already
 * decided then; a reuse found here has revoked the grant all the same, so only other failures
 * are logged.
 */
export function finishRotationAfterEachRequest(payloads: PayloadStore, logger: Logger): KoaMiddleware {
  return async (ctx, next) => {
    try {
      await next();
    } finally {
      await finishRotation(payloads, ctx).catch((error: unknown) => {
        if (!(error instanceof errors.InvalidGrant)) logger.error({ err: error }, 'consuming a refresh token failed');
      });
    }
  };
}
