import type { Response } from 'express';

import { InsufficientScope, type GuardError } from './errors.js';

/** An auth-param value as a quoted-string (RFC 9110 §11.2), without the characters that would end or escape it. */
const quote = (value: string) => `"${value.replace(/["\\]/gu, '')}"`;

/** The `WWW-Authenticate` challenge of a refusal (RFC 6750 §3): no error code when no credential was sent (§3.1). */
function challenge(error: GuardError, realm: string): string {
  const params = [`realm=${quote(realm)}`];
  if (error.oauthError !== undefined) {
    params.push(`error=${quote(error.oauthError)}`, `error_description=${quote(error.publicDescription)}`);
  }
  if (error instanceof InsufficientScope) params.push(`scope=${quote(error.requiredScopes.join(' '))}`);
  return `Bearer ${params.join(', ')}`;
}

/**
 * Answers a request the guard refuses: the status of `error`; a `WWW-Authenticate: Bearer`
 * challenge naming `realm` for 400, 401 and 403 (RFC 6750 §3), `Retry-After` for 503 instead;
 * `Cache-Control: no-store`; and the JSON body `{ error, error_description }`, whose `error` is
 * `unauthorized` when RFC 6750 has no code for the refusal (no credential sent).
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
export function writeRefusal(res: Response, error: GuardError, realm: string): void {
  if (error.status === 503) res.setHeader('Retry-After', '5');
  else res.setHeader('WWW-Authenticate', challenge(error, realm));
  res.setHeader('Cache-Control', 'no-store');
  const body: Record<string, string> = { error: error.oauthError ?? 'unauthorized', error_description: error.publicDescription };
  res.status(error.status).json(body);
}
