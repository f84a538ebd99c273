import type { Response } from 'express';

import { refusalOf, type DpopChallenge, type Refusal } from './core.js';
import type { GuardError } from './errors.js';

export type { DpopChallenge } from './core.js';

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
  sendRefusal(res, refusalOf(error, realm, dpop));
}

/** Answers a refusal of the core (see `refusalOf`) with express: its headers in order, then its body. */
export function sendRefusal(res: Response, refusal: Refusal): void {
  const { headers, body } = refusal;
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  writeErrorResponse(res, refusal.status, body.error, body.error_description);
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
