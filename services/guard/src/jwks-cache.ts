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
  /** Refresh the keys in the background once they are this old. Default 5 minutes. */
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
 * last good keys keep working for `staleIfErrorMs`.
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
  #attemptedAt = Number.NEGATIVE_INFINITY;
  #inflight: Promise<void> | undefined;
  #scheduled: Promise<void> | undefined;
  #fetches = 0;

  constructor(options: JwksCacheOptions) {
    this.#options = {
      maxAgeMs: 5 * 60_000,
      staleIfErrorMs: 24 * 3600_000,
      cooldownMs: 5000,
      timeoutMs: 5000,
      now: Date.now,
      ...options,
    };
  }

  /** How many times the JWKS has been requested (for monitoring and tests). */
  get fetchCount(): number {
    return this.#fetches;
  }

  /** A jose key resolver over the cached keys. */
  readonly resolver = (header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<ResolvedKey> =>
    this.#resolve(header, token);

  async #resolve(header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<ResolvedKey> {
    const now = this.#options.now();
    const age = now - this.#fetchedAt;
    if (this.#local === undefined || age > this.#options.staleIfErrorMs) {
      await this.#refresh(true);
    } else if (age > this.#options.maxAgeMs && this.#mayFetch(now)) {
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
    this.#inflight ??= this.#fetch().finally(() => {
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
    this.#fetchedAt = this.#options.now();
  }
}
