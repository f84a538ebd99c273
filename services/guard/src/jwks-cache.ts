import { createLocalJWKSet, errors, type FlattenedJWSInput, type JSONWebKeySet, type JWSHeaderParameters } from 'jose';

import { VerifierUnavailable } from './errors.js';

/**
 * @example
 * ```ts
 * new JwksCache({ jwksUri: 'http://localhost:4000/jwks', staleIfErrorMs: 6 * 3600_000 });
 * ```
 */
export interface JwksCacheOptions {
  /** The issuer's `jwks_uri`, or a function that finds it (discovery). */
  readonly jwksUri: string | (() => Promise<string>);
  /**
   * Refresh the keys in the background once they are this old. Default 5 minutes.
   *
   * An upper bound: the issuer's `Cache-Control: max-age` on the JWKS answer shortens it (see
   * {@link cacheControlMaxAge}), down to `cooldownMs` at the least, so that a `max-age=0` or a
   * `no-store` costs the issuer one request per cooldown, not one per verification. Without
   * such a header the keys are refreshed after `maxAgeMs`.
   */
  readonly maxAgeMs?: number;
  /**
   * Keep verifying with the last good keys for this long while the issuer is unreachable.
   * Default 24 hours.
   */
  readonly staleIfErrorMs?: number;
  /**
   * At most one fetch per this interval, whatever the traffic (unknown `kid` floods); a
   * token with an unknown `kid` waits at most this long for the next fetch. Default 5 s.
   */
  readonly cooldownMs?: number;
  /** Timeout of one JWKS request. Default 5 s. */
  readonly timeoutMs?: number;
  /** The clock, for tests. */
  readonly now?: () => number;
}

type KeyResolver = ReturnType<typeof createLocalJWKSet>;
type ResolvedKey = Awaited<ReturnType<KeyResolver>>;

/** The largest delta-seconds a recipient needs to represent (RFC 9111 §1.2.2). */
const MAX_DELTA_SECONDS = 2 ** 31;

/** One cache directive: a token name, then `=` and a token or a quoted string, if any. */
const DIRECTIVE = /([^\s=,"]+)(?:\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*))?/g;

/**
 * How long a response may be reused according to its `Cache-Control` header, in seconds
 * (RFC 9111 §5.2.2), or `undefined` when the header says nothing usable:
 *
 * - directive names are case-insensitive, and unknown directives are ignored;
 * - `no-store` or `no-cache` (qualified or not) give 0, whatever else the header says;
 * - `max-age=N` (N digits, quoted or not) gives N, at most 2^31;
 * - a `max-age` whose value is not digits makes the whole header unusable (`undefined`);
 * - several `max-age` values that differ give 0 (a response "considered stale", RFC 9111 §4.2.1);
 * - `s-maxage` is ignored: it is meant for shared caches, and a guard's JWKS cache is private
 *   to its process (RFC 9111 §5.2.2.10).
 *
 * @example
 * ```ts
 * cacheControlMaxAge('public, max-age=900'); // 900
 * cacheControlMaxAge('no-store'); // 0
 * cacheControlMaxAge('max-age=soon'); // undefined
 * ```
 */
export function cacheControlMaxAge(header: string | null | undefined): number | undefined {
  if (header === null || header === undefined) return undefined;
  const ages = new Set<number>();
  let malformed = false;
  for (const [, name = '', raw] of header.matchAll(DIRECTIVE)) {
    const directive = name.toLowerCase();
    if (directive === 'no-store' || directive === 'no-cache') return 0;
    if (directive !== 'max-age') continue;
    const value = raw?.startsWith('"') === true ? raw.slice(1, -1) : raw;
    if (value === undefined || !/^\d+$/.test(value)) malformed = true;
    else ages.add(Math.min(Number(value), MAX_DELTA_SECONDS));
  }
  if (malformed || ages.size === 0) return undefined;
  return ages.size === 1 ? [...ages][0] : 0;
}

function isKeySet(value: unknown): value is JSONWebKeySet {
  return (
    typeof value === 'object' &&
    value !== null &&
    Array.isArray((value as { keys?: unknown }).keys) &&
    (value as { keys: unknown[] }).keys.every((key) => typeof key === 'object' && key !== null)
  );
}

/**
 * The issuer's public keys, cached. Keys come only from `jwks_uri` (RFC 8725 §3.10); an
 * unknown `kid` triggers a refetch at most once per cooldown; while the issuer is down the
 * last good keys keep working for `staleIfErrorMs`. The keys are refreshed in the background once
 * older than `maxAgeMs`, or sooner if the issuer's `Cache-Control: max-age` says so.
 *
 * @example
 * ```ts
 * const keys = new JwksCache({ jwksUri: 'https://auth.example.com/jwks' });
 * const { payload } = await jwtVerify(token, keys.resolver, { algorithms: ['RS256'] });
 * ```
 */
export class JwksCache {
  readonly #options: Required<Omit<JwksCacheOptions, 'jwksUri'>> & Pick<JwksCacheOptions, 'jwksUri'>;
  #local: KeyResolver | undefined;
  #fetchedAt = Number.NEGATIVE_INFINITY;
  #freshnessMs: number;
  #attemptedAt = Number.NEGATIVE_INFINITY;
  #inflight: Promise<void> | undefined;
  #scheduled: Promise<void> | undefined;
  #fetches = 0;
  #failures = 0;
  #successes = 0;

  constructor(options: JwksCacheOptions) {
    this.#options = {
      maxAgeMs: 5 * 60_000,
      staleIfErrorMs: 24 * 3600_000,
      cooldownMs: 5000,
      timeoutMs: 5000,
      now: Date.now,
      ...options,
    };
    this.#freshnessMs = this.#options.maxAgeMs;
  }

  /** How many times the JWKS has been requested (for monitoring and tests). */
  get fetchCount(): number {
    return this.#fetches;
  }

  /** How many JWKS requests brought a JWK Set. */
  get fetchSuccesses(): number {
    return this.#successes;
  }

  /** How many JWKS requests failed (unreachable, an error status, not a JWK Set), for monitoring. */
  get fetchFailures(): number {
    return this.#failures;
  }

  /**
   * How long the cached keys are fresh, in ms: `maxAgeMs`, shortened by the `Cache-Control`
   * of the last successful JWKS answer (never below `cooldownMs`). `maxAgeMs` before the first.
   */
  get freshnessMs(): number {
    return this.#freshnessMs;
  }

  /**
   * When the cached keys go stale on the `now` clock (ms since the epoch), so that the next
   * verification starts a background refresh; -Infinity before the first successful fetch.
   */
  get staleAt(): number {
    return this.#fetchedAt + this.#freshnessMs;
  }

  /** A jose key resolver over the cached keys. */
  readonly resolver = (header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<ResolvedKey> =>
    this.#resolve(header, token);

  async #resolve(header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<ResolvedKey> {
    const now = this.#options.now();
    const age = now - this.#fetchedAt;
    if (this.#local === undefined || age > this.#options.staleIfErrorMs) {
      await this.#refresh(true);
    } else if (age > this.#freshnessMs && this.#mayFetch(now)) {
      // stale-while-revalidate: this request uses the cached keys
      this.#refresh(false).catch(() => undefined);
    }
    const local = this.#local;
    if (local === undefined) throw new VerifierUnavailable('no JWKS available');
    try {
      return await local(header, token);
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey)) throw error;
      await this.#refetchSoon();
      return (this.#local ?? local)(header, token);
    }
  }

  #mayFetch(now: number): boolean {
    return this.#inflight !== undefined || now - this.#attemptedAt >= this.#options.cooldownMs;
  }

  /**
   * An unknown `kid`: fetch now if the cooldown allows, otherwise wait for the end of the
   * cooldown and share one fetch with every other waiter. A key the issuer has just started
   * signing with is therefore never refused, and a flood of random kids costs the issuer
   * one request per cooldown.
   */
  #refetchSoon(): Promise<void> {
    const wait = this.#attemptedAt + this.#options.cooldownMs - this.#options.now();
    if (wait <= 0 || this.#inflight !== undefined) return this.#refresh(false).catch(() => undefined);
    this.#scheduled ??= new Promise<void>((resolve) => setTimeout(resolve, wait))
      .then(() => {
        this.#scheduled = undefined;
        return this.#refresh(false);
      })
      .catch(() => undefined);
    return this.#scheduled;
  }

  /** Fetches the JWKS, sharing one request among concurrent callers. */
  #refresh(required: boolean): Promise<void> {
    this.#inflight ??= this.#fetch()
      .catch((error: unknown) => {
        this.#failures += 1;
        throw error;
      })
      .finally(() => {
        this.#inflight = undefined;
      });
    return this.#inflight.catch((error: unknown) => {
      const usable = this.#local !== undefined && this.#options.now() - this.#fetchedAt <= this.#options.staleIfErrorMs;
      if (required || !usable) {
        throw error instanceof VerifierUnavailable ? error : new VerifierUnavailable('JWKS refresh failed', { cause: error });
      }
    });
  }

  async #fetch(): Promise<void> {
    this.#attemptedAt = this.#options.now();
    this.#fetches += 1;
    const { jwksUri } = this.#options;
    const url = typeof jwksUri === 'string' ? jwksUri : await jwksUri();
    const response = await fetch(url, {
      headers: { accept: 'application/json' },
      redirect: 'error',
      signal: AbortSignal.timeout(this.#options.timeoutMs),
    });
    if (!response.ok) throw new VerifierUnavailable(`JWKS request answered ${response.status}`);
    const body: unknown = await response.json();
    if (!isKeySet(body)) throw new VerifierUnavailable('JWKS response is not a JWK Set');
    this.#local = createLocalJWKSet(body);
    this.#freshnessMs = this.#freshness(cacheControlMaxAge(response.headers.get('cache-control')));
    this.#fetchedAt = this.#options.now();
    this.#successes += 1;
  }

  /** `maxAgeMs`, or the answer's max-age if shorter, but not below the cooldown. */
  #freshness(maxAgeSeconds: number | undefined): number {
    const { maxAgeMs, cooldownMs } = this.#options;
    if (maxAgeSeconds === undefined) return maxAgeMs;
    return Math.min(maxAgeMs, Math.max(cooldownMs, maxAgeSeconds * 1000));
  }
}
