import { errors } from 'oidc-provider';

import type { Logger } from '../logger.js';
import type { PayloadStore, PayloadToStore } from '../storage/payloads.js';
import type { KoaMiddleware } from './koa.js';
import { consumeSingleUse, refuseReuse } from './single-use.js';

/**
 * Refresh token rotation (RFC 9700 §4.14.2, RFC 6749 §6) as one storage operation, and the
 * retry of a lost refresh response (REFRESH_TOKEN_RETRY_WINDOW). The engine rotates a refresh
 * token in two calls: it consumes the old token, then saves its successor. This module is the
 * only link between those calls and the payload store:
 *
 * 1. `deferConsumption` (from the adapter's `consume`, inside a token request) records the old
 *    token instead of consuming it;
 * 2. `saveRefreshToken` (from the adapter's `upsert`) then rotates: consumption, the successor's
 *    id on the old token, and the successor's insert in one statement. When the old token was
 *    spent meanwhile (or before: the adapter lets a retryable spent token through, see
 *    `PayloadAdapter.find`), its successor is the answer if a retry may have it
 *    (`PayloadStore.unusedSuccessor`); the token the engine minted is then not stored and
 *    `answerRetries` puts the successor in the response instead. Otherwise the grant is revoked
 *    and the request refused (`invalid_grant`);
 * 3. `finishRotation`, after every engine request, consumes a token whose request ended
 *    without a successor (an error after the consumption), so nothing stays unconsumed.
 */
const pendingByRequest = new WeakMap<object, string>();
/** The successor a retry is answered with, by request. */
const retriedByRequest = new WeakMap<object, string>();

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

/** The successor `request` is answered with as a retry, if it is one (for tests and the response). */
export function retriedSuccessor(request: object): string | undefined {
  return retriedByRequest.get(request);
}

/**
 * Stores a refresh token: the successor of a token put off in `request` (a rotation, or the
 * retry of one within `retryWindow` seconds), or a new one.
 */
export async function saveRefreshToken(payloads: PayloadStore, request: object | undefined, token: PayloadToStore, retryWindow: number): Promise<void> {
  const predecessor = request === undefined ? undefined : pendingByRequest.get(request);
  if (request === undefined || predecessor === undefined) {
    if (!(await payloads.insertRefreshToken(token))) throw new errors.InvalidGrant('grant revoked');
    return;
  }
  pendingByRequest.delete(request);
  if (await payloads.rotateRefreshToken(predecessor, token)) return;
  const successor = await payloads.unusedSuccessor(predecessor, retryWindow);
  if (successor === undefined) await refuseReuse(payloads, 'RefreshToken', predecessor);
  else retriedByRequest.set(request, successor);
}

/** Consumes what `request` left pending (see the module comment). */
export async function finishRotation(payloads: PayloadStore, request: object): Promise<void> {
  const pending = pendingByRequest.get(request);
  if (pending === undefined) return;
  pendingByRequest.delete(request);
  await consumeSingleUse(payloads, 'RefreshToken', pending);
}

/**
 * A retry's answer carries the successor it was given before, not the token the engine minted
 * for it (which was never stored); everything else in it (a new access token, an ID token) is
 * the engine's own.
 */
function answerRetry(ctx: Parameters<KoaMiddleware>[0]): void {
  const successor = retriedByRequest.get(ctx);
  if (successor === undefined) return;
  retriedByRequest.delete(ctx);
  const body: unknown = ctx.body;
  if (ctx.status === 200 && typeof body === 'object' && body !== null && 'refresh_token' in body) {
    ctx.body = { ...body, refresh_token: successor };
  }
}

/**
 * The engine middleware that answers retries and runs `finishRotation` after every request.
 * The answer is already decided then; a reuse found by `finishRotation` has revoked the grant all
 * the same, so only other failures are logged.
 */
export function finishRotationAfterEachRequest(payloads: PayloadStore, logger: Logger): KoaMiddleware {
  return async (ctx, next) => {
    try {
      await next();
      answerRetry(ctx);
    } finally {
      await finishRotation(payloads, ctx).catch((error: unknown) => {
        if (!(error instanceof errors.InvalidGrant)) logger.error({ err: error }, 'consuming a refresh token failed');
      });
    }
  };
}
