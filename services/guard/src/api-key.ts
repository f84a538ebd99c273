import { hash } from 'node:crypto';

import { GuardError, InvalidToken, VerifierUnavailable } from './errors.js';
import { frozenPrincipal, scopeList, stringArray, type Principal } from './principal.js';

/**
 * @example
 * ```ts
 * const options: ApiKeyResolverOptions = {
 *   introspectionEndpoint: 'http://localhost:4000/token/introspection',
 *   issuer: 'http://localhost:4000',
 *   audience: 'http://localhost:4001',
 *   clientId, clientSecret,
 *   positiveTtlMs: 10_000,
 * };
 * ```
 */
export interface ApiKeyResolverOptions {
  /** The issuer's RFC 7662 endpoint, or a function that finds it (discovery). */
  readonly introspectionEndpoint: string | (() => Promise<string>);
  /** This service's own client, which authenticates the introspection calls. */
  readonly clientId: string;
  readonly clientSecret: string;
  readonly issuer: string;
  /** This service's own resource URI: a key is accepted only when its resources (`aud`) name it. */
  readonly audience: string;
  /** How long a valid key is trusted without asking again. Default 30 s, at most 30 s. */
  readonly positiveTtlMs?: number;
  /** How long an invalid key is refused without asking again. Default 5 s. */
  readonly negativeTtlMs?: number;
  /** Bound on cached answers. Default 10,000. */
  readonly maxEntries?: number;
  readonly timeoutMs?: number;
  readonly now?: () => number;
}

/** Turns an API key into the caller it speaks for.
 *
 * @example
 * ```ts
 * const principal = await resolver.resolve('sgk_…');
 * principal.kind; // 'api_key'
 * ```
 */
export interface ApiKeyResolver {
  /** @throws InvalidToken for an unknown, revoked or expired key, or one for other services; VerifierUnavailable when the issuer can't answer */
  resolve(apiKey: string): Promise<Principal>;
  /**
   * The principal of `apiKey` if the issuer vouched for it within the positive cache time;
   * `undefined` otherwise (never asked, refused, or the answer is too old). Never calls the
   * issuer, never throws: on `undefined`, call {@link ApiKeyResolver.resolve}.
   *
   * @example
   * ```ts
   * const principal = resolver.cached(apiKey) ?? (await resolver.resolve(apiKey));
   * ```
   */
  cached(apiKey: string): Principal | undefined;
}

type Answer = { principal: Principal } | { refused: string };

const MAX_POSITIVE_TTL_MS = 30_000;
/** Sigil API keys: `sgk_` + 32 hex + `_` + 43 base64url characters. */
const API_KEY_SHAPE = /^sgk_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/u;

/**
 * Asks the issuer about `apiKey` (RFC 7662 §2.1), authenticated with `credentials` (the
 * Basic header of this service's client). An inactive credential, or one that is not an API
 * key, comes back as a refusal (cached for `negativeTtlMs`); no usable answer throws
 * VerifierUnavailable, which is never cached. A key whose resources (`aud`) do not name this
 * service is refused even when the issuer calls it active.
 */
async function introspect(options: ApiKeyResolverOptions, credentials: string, apiKey: string): Promise<Answer> {
  const { introspectionEndpoint } = options;
  const url = typeof introspectionEndpoint === 'string' ? introspectionEndpoint : await introspectionEndpoint();
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { authorization: credentials, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ token: apiKey, token_type_hint: 'api_key' }),
      redirect: 'error',
      signal: AbortSignal.timeout(options.timeoutMs ?? 5000),
    });
  } catch (error) {
    throw new VerifierUnavailable('introspection request failed', { cause: error });
  }
  if (!response.ok) {
    throw new VerifierUnavailable(`introspection answered ${response.status} (check GUARD_CLIENT_ID/GUARD_CLIENT_SECRET)`);
  }
  const body = (await response.json()) as Record<string, unknown>;
  if (body['active'] !== true) return { refused: 'API key inactive (unknown, revoked or expired)' };
  if (body['token_type'] !== 'api_key' || typeof body['sub'] !== 'string') {
    return { refused: 'credential in X-API-Key is not an API key' };
  }
  // the issuer vouches for keys to any service of theirs: this one must be among the key's resources
  const audiences = typeof body['aud'] === 'string' ? [body['aud']] : stringArray(body['aud']);
  if (!audiences.includes(options.audience)) return { refused: 'API key is not for this service (aud)' };
  return {
    // frozen: the same principal is handed to every request that presents this key
    principal: frozenPrincipal({
      kind: 'api_key',
      sub: body['sub'],
      clientId: undefined,
      scopes: scopeList(body['scope']),
      roles: stringArray(body['roles']),
      issuer: options.issuer,
      expiresAt: typeof body['exp'] === 'number' ? new Date(body['exp'] * 1000) : undefined,
      claims: body,
    }),
  };
}

/**
 * Resolves API keys through the issuer's introspection endpoint (RFC 7662), authenticated as
 * this service's client, with a short cache: a revoked key is refused within `positiveTtlMs`.
 * Keys are held in memory only as SHA-256 digests.
 *
 * @example
 * ```ts
 * const apiKeys = createApiKeyResolver({
 *   introspectionEndpoint: 'https://auth.example.com/token/introspection',
 *   issuer: 'https://auth.example.com',
 *   audience: 'https://orders.example.com',
 *   clientId: process.env.GUARD_CLIENT_ID!,
 *   clientSecret: process.env.GUARD_CLIENT_SECRET!,
 * });
 * const principal = await apiKeys.resolve(req.get('x-api-key')!);
 * ```
 */
export function createApiKeyResolver(options: ApiKeyResolverOptions): ApiKeyResolver {
  const now = options.now ?? Date.now;
  const positiveTtl = Math.min(options.positiveTtlMs ?? MAX_POSITIVE_TTL_MS, MAX_POSITIVE_TTL_MS);
  const negativeTtl = options.negativeTtlMs ?? 5000;
  const maxEntries = options.maxEntries ?? 10_000;
  const cache = new Map<string, { answer: Answer; until: number }>();
  const inflight = new Map<string, Promise<Answer>>();
  const credentials = `Basic ${Buffer.from(`${encodeURIComponent(options.clientId)}:${encodeURIComponent(options.clientSecret)}`).toString('base64')}`;

  /** The key's SHA-256 (the only form in which keys are held), or undefined when it is no Sigil API key. */
  const digestOf = (apiKey: string): string | undefined => (API_KEY_SHAPE.test(apiKey) ? hash('sha256', apiKey, 'base64url') : undefined);

  function remember(digest: string, answer: Answer): void {
    if (maxEntries <= 0) return;
    if (cache.size >= maxEntries) {
      const oldest = cache.keys().next();
      if (oldest.done !== true) cache.delete(oldest.value);
    }
    const ttl = 'principal' in answer ? positiveTtl : negativeTtl;
    const expiry = 'principal' in answer ? (answer.principal.expiresAt?.getTime() ?? Number.POSITIVE_INFINITY) : Number.POSITIVE_INFINITY;
    cache.set(digest, { answer, until: Math.min(now() + ttl, expiry) });
  }

  return {
    cached(apiKey) {
      const digest = digestOf(apiKey);
      const hit = digest === undefined ? undefined : cache.get(digest);
      return hit !== undefined && hit.until > now() && 'principal' in hit.answer ? hit.answer.principal : undefined;
    },
    async resolve(apiKey) {
      const digest = digestOf(apiKey);
      if (digest === undefined) throw new InvalidToken('X-API-Key is not a Sigil API key');
      let answer: Answer;
      const hit = cache.get(digest);
      if (hit !== undefined && hit.until > now()) {
        answer = hit.answer;
      } else {
        let pending = inflight.get(digest);
        if (pending === undefined) {
          pending = introspect(options, credentials, apiKey).finally(() => inflight.delete(digest));
          inflight.set(digest, pending);
        }
        try {
          answer = await pending;
        } catch (error) {
          throw error instanceof GuardError ? error : new VerifierUnavailable('introspection failed', { cause: error });
        }
        remember(digest, answer);
      }
      if ('refused' in answer) throw new InvalidToken(answer.refused);
      return answer.principal;
    },
  };
}
