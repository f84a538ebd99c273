import type { Response } from 'express';

import { InsufficientScope, UseDpopNonce, type GuardError } from './errors.js';

/** An auth-param value as a quoted-string (RFC 9110 §11.2), without the characters that would end or escape it. */
const quote = (value: string) => `"${value.replace(/["\\]/gu, '')}"`;

/**
 * A refusal answered with the DPoP authentication scheme (RFC 9449 §7.1) rather than Bearer:
 * for a request that used it, or whose DPoP-bound token came without a valid proof.
 */
export interface DpopChallenge {
  /** The proof algorithms the service accepts (the challenge's `algs`). */
  readonly algs: readonly string[];
}

/**
 * The `WWW-Authenticate` challenge of a refusal (RFC 6750 §3, or RFC 9449 §7.1 with `algs`
 * for the DPoP scheme): no error code when no credential was sent (RFC 6750 §3.1).
 */
function challenge(error: GuardError, realm: string, dpop: DpopChallenge | undefined): string {
  const params = [`realm=${quote(realm)}`];
  if (error.oauthError !== undefined) {
    params.push(`error=${quote(error.oauthError)}`, `error_description=${quote(error.publicDescription)}`);
  }
  if (error instanceof InsufficientScope) params.push(`scope=${quote(error.requiredScopes.join(' '))}`);
  if (dpop !== undefined) params.push(`algs=${quote(dpop.algs.join(' '))}`);
  return `${dpop === undefined ? 'Bearer' : 'DPoP'} ${params.join(', ')}`;
}

/**
 * Answers a request the guard refuses: the status of `error`; a `WWW-Authenticate: Bearer`
 * challenge naming `realm` for 400, 401 and 403 (RFC 6750 §3), or a `DPoP` one with `dpop`
 * (RFC 9449 §7.1; and the nonce to use in `DPoP-Nonce` for `use_dpop_nonce`, §9),
 * `Retry-After` for 503 instead; `Cache-Control: no-store`; and the JSON body
 * `{ error, error_description }`, whose `error` is `unauthorized` when RFC 6750 has no code for
 * the refusal (no credential sent).
 *
 * @example
 * ```ts
 * app.get('/orders', async (req, res) => {
 *   try {
 *     req.auth = await guard.authenticate({ apiKey: req.get('x-api-key') });
 *   } catch (error) {
 *     if (error instanceof GuardError) return writeRefusal(res, error, 'https://orders.example.com');
 *     throw error;
 *   }
 *   res.json(listOrders());
 * });
 * ```
 */
export function writeRefusal(res: Response, error: GuardError, realm: string, dpop?: DpopChallenge): void {
  if (error.status === 503) res.setHeader('Retry-After', '5');
  else res.setHeader('WWW-Authenticate', challenge(error, realm, dpop));
  if (error instanceof UseDpopNonce) res.setHeader('DPoP-Nonce', error.nonce);
  res.setHeader('Cache-Control', 'no-store');
  writeErrorResponse(res, error.status, error.oauthError ?? 'unauthorized', error.publicDescription);
}

/**
 * Answers `status` with the JSON body `{ "error": code, "error_description": description }`,
 * the error shape of RFC 6749 §5.2 and RFC 6750 §3, and nothing else (no header). The one
 * writer of that body: {@link writeRefusal} answers the guard's refusals with it, and a service
 * answers its own errors with it (an unknown route, a body it cannot read or does not accept).
 *
 * @example
 * ```ts
 * app.use((_req, res) => writeErrorResponse(res, 404, 'not_found', 'no such endpoint'));
 * ```
 */
export function writeErrorResponse(res: Response, status: number, code: string, description: string): void {
  const body: Record<string, string> = { error: code, error_description: description };
  res.status(status).json(body);
}
