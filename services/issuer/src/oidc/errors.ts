import type { ServerResponse } from 'node:http';

import type Provider from 'oidc-provider';
import { errors, type KoaContextWithOIDC } from 'oidc-provider';

import { unavailablePage } from '../interactions/pages.js';
import type { Logger } from '../logger.js';
import { isDatabaseUnavailable, unavailability } from '../storage/unavailable.js';
import { respond } from './error-page.js';
import type { KoaMiddleware } from './koa.js';
import { routes } from './routes.js';

/**
 * The issuer's one error model. The engine throws its own error classes (`errors.InvalidGrant`,
 * `errors.InvalidClientAuth`…), each an RFC 6749 §5.2 code with its status, and answers them;
 * every error answer Sigil writes itself is made here: `errorBody` is the one serializer, on
 * the engine's koa context or on a plain node response. Unexpected failures are `server_error`
 * with a fixed description; their detail goes to the log only.
 */
export interface ErrorBody {
  readonly error: string;
  readonly error_description: string;
}

/** The one shape of an error answer (RFC 6749 §5.2). */
export function errorBody(error: string, description: string): ErrorBody {
  return { error, error_description: description };
}

/** The answer to a failure Sigil did not foresee: no detail leaves the process. */
export const SERVER_ERROR = errorBody('server_error', 'an unexpected error occurred');

/** A path nothing serves. Not an OAuth error (no endpoint was reached), so not an RFC 6749 code. */
export const NOT_FOUND = errorBody('not_found', 'no such endpoint');

/** Writes an error answer on a plain node response (Sigil's own routes and its request listener). */
export function sendError(res: ServerResponse, status: number, body: ErrorBody): void {
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.end(JSON.stringify(body));
}

/**
 * The answer while the database is unreachable (RFC 6749 §4.1.2.1's `temporarily_unavailable`,
 * 503 with Retry-After, RFC 9110 §15.6.4): the request was not served and may be sent again.
 */
export const TEMPORARILY_UNAVAILABLE = errorBody('temporarily_unavailable', 'the service is temporarily unavailable; retry later');

/** Retry-After of a 503: about the time an unreachable database takes to be noticed back. */
export const RETRY_AFTER_SECONDS = 5;

/** The 503 of an outage on a plain node response: JSON on API paths, Sigil's page for a browser. */
export function sendUnavailable(res: ServerResponse, as: 'json' | 'html'): void {
  res.setHeader('Retry-After', String(RETRY_AFTER_SECONDS));
  res.setHeader('Cache-Control', 'no-store');
  if (as === 'json') {
    sendError(res, 503, TEMPORARILY_UNAVAILABLE);
    return;
  }
  const page = unavailablePage();
  res.statusCode = 503;
  res.setHeader('Content-Security-Policy', page.csp);
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.end(page.html);
}

/** One warning line for a request failed by an outage: what the driver said, no statement, no request values. */
export function logUnavailable(logger: Logger, error: unknown): void {
  logger.warn({ reason: unavailability(error) }, 'database unavailable');
}

/** 429 with Retry-After (set by the grant): the account or address is temporarily locked. */
export class TooManyAttempts extends errors.OIDCProviderError {
  /** `locked`: failed guesses locked the account or address; `in_flight`: too many attempts at once, nothing counted. */
  constructor(reason: 'locked' | 'in_flight' = 'locked') {
    super(429, 'invalid_grant');
    const description = reason === 'locked' ? 'too many failed sign-in attempts; retry later' : 'too many sign-in attempts at once for this account; retry in a moment';
    Object.assign(this, { error_description: description });
  }
}

/** The one description for a wrong password, an unknown user and a disabled user (no user enumeration). */
export const INVALID_CREDENTIALS = 'invalid username or password';

/** `invalid_grant` for a failed sign-in (RFC 6749 §5.2: the resource owner credentials are invalid). */
export class InvalidCredentials extends errors.InvalidGrant {
  constructor() {
    super();
    Object.assign(this, { error_description: INVALID_CREDENTIALS });
  }
}

/** The methods each engine endpoint answers, for 405 answers. */
const METHODS_BY_PATH: ReadonlyMap<string, string> = new Map([
  [routes.token, 'POST, OPTIONS'],
  [routes.introspection, 'POST, OPTIONS'],
  [routes.revocation, 'POST, OPTIONS'],
  [routes.jwks, 'GET, HEAD, OPTIONS'],
  [routes.userinfo, 'GET, POST, OPTIONS'],
  [routes.authorization, 'GET, POST'],
  [routes.end_session, 'GET, POST'],
]);

/** Members of a token request body that carry client credentials (RFC 6749 §2.3.1, RFC 7523 §2.2). */
const CLIENT_CREDENTIAL_MEMBERS = ['client_id', 'client_secret', 'client_assertion', 'client_assertion_type'];

function attested(ctx: KoaContextWithOIDC): boolean {
  return ctx.get('oauth-client-attestation') !== '' || ctx.get('oauth-client-attestation-pop') !== '';
}

/** The id and secret of a well-formed `Basic` header (RFC 6749 §2.3.1: form-encoded, then base64), or undefined. */
function basicCredentials(header: string): { id: string; secret: string } | undefined {
  const [scheme, value, ...rest] = header.split(' ');
  if (rest.length > 0 || scheme?.toLowerCase() !== 'basic' || value === undefined || !/^[A-Za-z0-9+/]+={0,2}$/u.test(value)) return undefined;
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) return undefined;
  try {
    const unescape = (part: string) => decodeURIComponent(part.replace(/\+/gu, '%20'));
    return { id: unescape(decoded.slice(0, colon)), secret: unescape(decoded.slice(colon + 1)) };
  } catch {
    return undefined;
  }
}

/**
 * The request names no client at all (RFC 6749 §5.2 `invalid_client`: "no client authentication
 * included"), as opposed to a malformed credential, which stays `invalid_request`: no client_id,
 * no assertion, no Basic header naming one, and nothing repeated or combined that the engine
 * refuses first (docs/engine.md#error-codes-sigil-rewrites).
 */
function presentedNoClient(ctx: KoaContextWithOIDC): boolean {
  const { params, client } = ctx.oidc;
  if (params === undefined || client !== undefined || attested(ctx)) return false;
  const body = (ctx.oidc.body ?? {}) as Record<string, unknown>;
  if (CLIENT_CREDENTIAL_MEMBERS.some((member) => Array.isArray(body[member]))) return false;
  if (params['client_assertion'] !== undefined) return false;
  const authorization = ctx.get('authorization');
  if (authorization === '') return !params['client_id'];
  if (params['client_secret']) return false;
  const basic = basicCredentials(authorization);
  return basic !== undefined && basic.id === '' && basic.secret !== '' && !params['client_id'];
}

/** An authenticated client (one credential, no attestation) asked for a grant type it is not registered for. */
function grantNotAllowed(ctx: KoaContextWithOIDC): boolean {
  const grantType = ctx.oidc.params?.['grant_type'];
  const client = ctx.oidc.client;
  return client !== undefined && !attested(ctx) && typeof grantType === 'string' && !client.grantTypeAllowed(grantType);
}

/**
 * RFC 6749 §5.2 names two cases the engine answers as `invalid_request`: a grant type the
 * client is not registered for (`unauthorized_client`) and a request with no client
 * authentication (401 `invalid_client`). Decided from the request and the client, not from
 * the engine's wording (docs/engine.md#error-codes-sigil-rewrites).
 */
function tokenEndpointCodes(ctx: KoaContextWithOIDC): void {
  const body = ctx.body as { error?: unknown; error_description?: unknown } | undefined;
  if (ctx.status !== 400 || body?.error !== 'invalid_request') return;
  if (grantNotAllowed(ctx)) {
    ctx.body = { ...body, error: 'unauthorized_client' };
  } else if (presentedNoClient(ctx)) {
    ctx.status = 401;
    ctx.body = errorBody('invalid_client', 'client authentication is required');
  }
}

/**
 * What the engine does not route is JSON, never an HTML page: a 405 with `Allow` for an
 * endpoint asked with the wrong method (RFC 9110 §15.5.6), a 404 otherwise.
 */
function unroutedAsJson(ctx: Parameters<KoaMiddleware>[0]): void {
  if (ctx.status !== 404 || ctx.body !== undefined) return;
  const allowed = METHODS_BY_PATH.get(ctx.path);
  if (allowed !== undefined) {
    ctx.status = 405;
    ctx.set('Allow', allowed);
    ctx.body = errorBody('invalid_request', `use ${allowed.replace(', OPTIONS', '')} on this endpoint`);
    return;
  }
  ctx.status = 404;
  ctx.body = NOT_FOUND;
}

/**
 * Engine answers whose `server_error` was an outage (marked by {@link logServerErrors}, which
 * hears the engine's error handlers): they become 503s on their way out.
 */
const outages = new WeakSet<object>();

/** Turns the engine's answer into the outage's 503, as JSON or, where the engine rendered a page, as Sigil's page. */
function answerUnavailable(ctx: Parameters<KoaMiddleware>[0]): void {
  if (ctx.headerSent) return;
  // nothing answered yet (the failure came through): what the client accepts, as the engine decides
  const page = ctx.body === undefined || ctx.body === null ? ctx.accepts('json', 'html') === 'html' : ctx.response.is('html') !== false;
  ctx.status = 503;
  ctx.set('Retry-After', String(RETRY_AFTER_SECONDS));
  ctx.set('Cache-Control', 'no-store');
  if (page) respond(ctx as KoaContextWithOIDC, unavailablePage());
  else ctx.body = TEMPORARILY_UNAVAILABLE;
}

/**
 * An unreachable database is a 503, never the engine's `server_error` 500: whether the engine
 * caught the failure (every endpoint's error handler) or it came through (a session saved after
 * the answer, Sigil's own engine middlewares).
 */
async function outagesAsUnavailable(ctx: Parameters<KoaMiddleware>[0], next: () => Promise<unknown>): Promise<void> {
  try {
    await next();
  } catch (error) {
    if (!isDatabaseUnavailable(error)) throw error;
    // the engine is this koa application: its `server_error` listener logs and marks the answer
    ctx.app.emit('server_error', ctx, error);
  }
  if (outages.has(ctx)) answerUnavailable(ctx);
}

/** The engine middleware that applies the rules above to every answer the engine gives. */
export const rfc6749Answers: KoaMiddleware = async (ctx, next) => {
  await outagesAsUnavailable(ctx, next);
  if (ctx.path === routes.token && 'oidc' in ctx) tokenEndpointCodes(ctx as KoaContextWithOIDC);
  unroutedAsJson(ctx);
};

/**
 * Logs the detail of every `server_error` the engine answers (the client sees none of it); an
 * outage is one warning line instead, and its answer becomes a 503 (`rfc6749Answers`).
 */
export function logServerErrors(provider: Provider, logger: Logger): void {
  provider.on('server_error', (ctx, error) => {
    if (!isDatabaseUnavailable(error)) {
      logger.error({ err: error }, 'oidc-provider server error');
      return;
    }
    outages.add(ctx);
    logUnavailable(logger, error);
  });
}
