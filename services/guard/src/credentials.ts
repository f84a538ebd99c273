import type { ApiKeyResolver } from './api-key.js';
import type { DpopRequest } from './dpop-proof.js';
import { InvalidRequest } from './errors.js';
import type { Principal } from './principal.js';
import type { AccessTokenVerifier } from './verify-access-token.js';

/*
 * The credentials of a request are read on two paths.
 *
 * - The full path, `requestCredentials`, reads every credential the request carries (a
 *   repeated API key is refused) and finds the bearer token with `bearerToken`, the strict
 *   parser of RFC 6750 §2.1: "Bearer" in any case (an auth-scheme is case-insensitive, RFC 9110
 *   §11.1), one or more spaces, a b64token, optional trailing spaces.
 * - The cached path, `cachedPrincipal`, runs on every request before the full path and finds
 *   the token with `bearerCandidate`: the same frame, without looking at the token's
 *   characters.
 *
 * The rule that ties them: whenever `bearerCandidate(header)` is a b64token,
 * `bearerToken(header)` is that same string. The cached path uses a candidate for one thing
 * only, a look-up in the verified-token cache, which holds compact JWSs only
 * (verify-access-token.ts refuses anything else before it caches): base64url parts joined by
 * dots, so b64tokens. A hit is therefore exactly the token the full path would have found;
 * anything else (a miss, another scheme, a malformed header) goes through the full path. A
 * change to either parser, or to what the cache admits, must keep this rule (the test
 * credentials.test.ts checks it).
 *
 * A DPoP-bound token (RFC 9449 §7.1: `Authorization: DPoP <token>` and a `DPoP` proof) is
 * found on the full path with `dpopToken`, the same frame as `bearerToken` with the scheme
 * "DPoP", and on the cached path with `dpopCandidate`, under the same rule. Its proof is new
 * on every request and is checked on both paths; the cached path only spares the promises when
 * the token is cached and the proof can be decided at once (`cachedDpop` in
 * verify-access-token.ts). The cached path refuses to serve a DPoP-bound token that came as
 * Bearer.
 */

/** `Bearer`, one or more spaces, a b64token (RFC 6750 §2.1), optional spaces. */
const BEARER_CREDENTIALS = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/iu;
const BEARER_SCHEME = /^Bearer\b/iu;
/** `DPoP`, one or more spaces, a token68 (RFC 9449 §7.1, RFC 9110 §11.2: the b64token syntax), optional spaces. */
const DPOP_CREDENTIALS = /^DPoP +([A-Za-z0-9\-._~+/]+=*) *$/iu;
const DPOP_SCHEME = /^DPoP\b/iu;

/**
 * The bearer token in an Authorization header, by the strict rule (see the top of this file):
 * `undefined` for no header or another scheme (Basic…), `''` for a malformed Bearer header,
 * which is then refused as a bad token.
 *
 * @example
 * ```ts
 * bearerToken('bearer  eyJ.eyJ.sig'); // 'eyJ.eyJ.sig'
 * bearerToken('Bearer a b'); // ''
 * bearerToken('Basic dXNlcg=='); // undefined
 * ```
 */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = BEARER_CREDENTIALS.exec(header);
  if (match === null) return BEARER_SCHEME.test(header) ? '' : undefined;
  return match[1];
}

/**
 * The DPoP-bound access token in an Authorization header (RFC 9449 §7.1), by the same rule as
 * {@link bearerToken}: `undefined` for no header or another scheme, `''` for a malformed DPoP
 * header, which is then refused as a bad token.
 *
 * @example
 * ```ts
 * dpopToken('DPoP eyJ.eyJ.sig'); // 'eyJ.eyJ.sig'
 * dpopToken('Bearer eyJ.eyJ.sig'); // undefined
 * ```
 */
export function dpopToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = DPOP_CREDENTIALS.exec(header);
  if (match === null) return DPOP_SCHEME.test(header) ? '' : undefined;
  return match[1];
}

/** Whether an Authorization header uses the DPoP scheme (its refusals then answer a DPoP challenge, RFC 9449 §7.1). */
export function usesDpopScheme(authorization: string | undefined): boolean {
  return authorization !== undefined && DPOP_SCHEME.test(authorization);
}

const SPACE = 0x20;
/** "bearer" and "dpop", compared with ASCII letters folded to lower case (`| 0x20`). */
const BEARER = [0x62, 0x65, 0x61, 0x72, 0x65, 0x72] as const;
const DPOP = [0x64, 0x70, 0x6f, 0x70] as const;

/** The credentials after `scheme` (its letters in lower case), one or more spaces and before optional trailing spaces; no look at their characters. */
function candidateAfter(header: string, scheme: readonly number[]): string | undefined {
  const length = scheme.length;
  if (header.length < length + 2) return undefined;
  for (let i = 0; i < length; i += 1) {
    if ((header.charCodeAt(i) | 0x20) !== scheme[i]) return undefined;
  }
  let start = length;
  while (header.charCodeAt(start) === SPACE) start += 1;
  let end = header.length;
  while (end > start && header.charCodeAt(end - 1) === SPACE) end -= 1;
  return start === length || end === start ? undefined : header.slice(start, end);
}

/**
 * What {@link bearerToken} would return for `header`, provided that the result is a b64token:
 * "Bearer" in any case, one or more spaces, the token, optional spaces. It does not look at
 * the token's characters, so its result may only be used to look up the verified-token cache
 * (see the top of this file).
 *
 * @example
 * ```ts
 * bearerCandidate('Bearer  eyJ.eyJ.sig '); // 'eyJ.eyJ.sig'
 * bearerCandidate('Bearer a b'); // 'a b': never in the cache, so the full path answers
 * ```
 */
export function bearerCandidate(header: string): string | undefined {
  return candidateAfter(header, BEARER);
}

/**
 * What {@link dpopToken} would return for `header`, provided that the result is a b64token: the
 * DPoP counterpart of {@link bearerCandidate}, under the same rule.
 *
 * @example
 * ```ts
 * dpopCandidate('dpop eyJ.eyJ.sig'); // 'eyJ.eyJ.sig'
 * dpopCandidate('Bearer eyJ.eyJ.sig'); // undefined
 * ```
 */
export function dpopCandidate(header: string): string | undefined {
  return candidateAfter(header, DPOP);
}

/** What a request presents: a bearer token, a DPoP-bound token with the request's proof, an API key, or none. */
export interface Credentials {
  readonly bearer?: string | undefined;
  readonly apiKey?: string | undefined;
  /** `Authorization: DPoP <token>` (RFC 9449 §7.1) and what the proof must match. */
  readonly dpop?: DpopCredentials | undefined;
}

/**
 * A DPoP-bound access token and the request its proof must be for.
 *
 * @example
 * ```ts
 * await guard.authenticate({ dpop: { accessToken, proof: req.get('dpop'), method: 'GET', url: 'https://orders.example.com/orders' } });
 * ```
 */
export interface DpopCredentials extends DpopRequest {
  readonly accessToken: string;
}

/**
 * The headers of a request as node's `http` module gives them (`IncomingHttpHeaders`): names in
 * lower case, a repeated header as an array (except those node joins or keeps the first of).
 */
export interface RequestHeaders {
  readonly [name: string]: string | readonly string[] | undefined;
}

/**
 * How the guard reads one kind of request object (an express request, a Fastify request, the
 * plain {@link GuardRequest} of the framework-neutral API): one reader per kind, made once, so
 * that the per-request path allocates nothing to read a request.
 */
export interface RequestReader<R> {
  headers(req: R): RequestHeaders;
  method(req: R): string;
  /** The path the service received, without the query (for the log). */
  path(req: R): string;
  /** The URL the client addressed, as its DPoP proof's `htu` names it (RFC 9449 §4.3 step 9: no query, no fragment). */
  url(req: R, publicUrl: string | undefined): string;
  /** The `api_key` query parameter(s): undefined when absent. Read only when the route accepts it. */
  queryApiKey(req: R): unknown;
}

/** The value of a header that is not repeated; undefined when absent or repeated. */
const single = (value: string | readonly string[] | undefined): string | undefined => (typeof value === 'string' ? value : undefined);

/**
 * The full path: the credentials of `req` by every rule. An API key comes from `X-API-Key`
 * or, when the route allows it, the `api_key` query parameter. A DPoP-bound token comes with
 * the request's `DPoP` header, method and URL (`publicUrl`: see {@link RequestReader.url}).
 *
 * @throws InvalidRequest for an API key that is repeated or sent both ways
 * @example
 * ```ts
 * const principal = await guard.authenticate(requestCredentials(reader, req, false));
 * ```
 */
export function requestCredentials<R>(reader: RequestReader<R>, req: R, apiKeyInQuery: boolean, publicUrl?: string): Credentials {
  const headers = reader.headers(req);
  const headerKey = headers['x-api-key'];
  const queryKey = apiKeyInQuery ? reader.queryApiKey(req) : undefined;
  if (Array.isArray(headerKey) || Array.isArray(queryKey)) throw new InvalidRequest('repeated API key');
  const apiKey = typeof headerKey === 'string' ? headerKey : typeof queryKey === 'string' ? queryKey : undefined;
  if (typeof headerKey === 'string' && typeof queryKey === 'string') throw new InvalidRequest('API key sent twice');
  const authorization = single(headers['authorization']);
  const dpop = dpopToken(authorization);
  if (dpop !== undefined) {
    const proof = headers['dpop'];
    return { apiKey, dpop: { accessToken: dpop, proof: typeof proof === 'string' ? proof : undefined, method: reader.method(req), url: reader.url(req, publicUrl) } };
  }
  return { bearer: bearerToken(authorization), apiKey };
}

/**
 * The cached path: the principal for a request whose only credential is already in a cache,
 * a bearer token verified earlier (or a DPoP-bound one, with a proof decided at once: see the
 * top of this file) or an API key the issuer vouched for within the positive cache time.
 * `undefined` sends the request through the full path, which applies every rule (two
 * credentials, a repeated key, a malformed header…) and answers refusals.
 *
 * Reads `req` as few times as it can: behind express 5, every request object has a hidden
 * class of its own (express re-parents it with `Object.setPrototypeOf`, then adds
 * properties), so each property read on `req` misses V8's inline caches.
 *
 * @example
 * ```ts
 * const principal = cachedPrincipal(reader, req, false, verifier, apiKeys);
 * if (principal !== undefined) return next(); // no promise, no microtask turn
 * ```
 */
export function cachedPrincipal<R>(
  reader: RequestReader<R>,
  req: R,
  apiKeyInQuery: boolean,
  verifier: AccessTokenVerifier,
  apiKeys: ApiKeyResolver | undefined,
  publicUrl?: string,
): Principal | undefined {
  if (apiKeyInQuery && reader.queryApiKey(req) !== undefined) return undefined;
  const headers = reader.headers(req);
  const authorization = headers['authorization'];
  const headerKey = headers['x-api-key'];
  if (headerKey === undefined) {
    if (typeof authorization !== 'string') return undefined;
    const token = bearerCandidate(authorization);
    if (token !== undefined) return verifier.cached(token);
    const bound = dpopCandidate(authorization);
    if (bound === undefined) return undefined;
    const proof = headers['dpop'];
    return verifier.cachedDpop(bound, { proof: typeof proof === 'string' ? proof : undefined, method: reader.method(req), url: reader.url(req, publicUrl) });
  }
  return authorization === undefined && typeof headerKey === 'string' ? apiKeys?.cached(headerKey) : undefined;
}
