import { VerifierUnavailable } from './errors.js';

/**
 * Where a guard remembers the DPoP proofs it has accepted, so that none is accepted twice
 * (RFC 9449 §11.1). The guard's default is a {@link DpopReplayCache} in the process's memory:
 * a service with several instances gives them one shared store instead (a Redis `SET NX PX`,
 * a database insert on a primary key), or a proof accepted by one instance can be replayed to
 * another within its lifetime.
 *
 * @example
 * ```ts
 * // a store shared by every instance of the service (ioredis)
 * const replayStore: DpopReplayStore = {
 *   use: async (id, expiresAt) => (await redis.set(`dpop:${id}`, '1', 'PXAT', expiresAt, 'NX')) === 'OK',
 * };
 * createGuard({ issuer, audience, dpop: { replayStore } });
 * ```
 */
export interface DpopReplayStore {
  /**
   * Records proof `id` as seen until `expiresAt` (epoch ms), unless it is already recorded and
   * that record has not expired: check and record must be one atomic step across everything
   * that shares the store, so that of two requests racing with one proof exactly one is told
   * true. `id` is 22 base64url characters (a digest of the proof's key and `jti`); a record
   * may be dropped once `expiresAt` has passed, when the proof is refused as too old anyway.
   * @returns true for a proof not seen before; false for a replay
   * @throws a GuardError (VerifierUnavailable: 503) when it cannot tell; any other error is answered 503 too
   */
  use(id: string, expiresAt: number): boolean | Promise<boolean>;
}

/**
 * @example
 * ```ts
 * new DpopReplayCache({ maxEntries: 500_000 }); // ≥ peak DPoP requests/s × (maxAge + clock skew)
 * ```
 */
export interface DpopReplayCacheOptions {
  /**
   * Most proofs remembered at once. A proof is remembered until it is too old to be accepted
   * (its `iat` plus the guard's `maxAgeSeconds`), so this must hold every proof accepted within
   * that time: when it is full of unexpired proofs, new proofs are refused (503) rather than a
   * remembered one forgotten early. Default 200,000.
   */
  readonly maxEntries?: number;
  /** The clock in milliseconds, for tests. */
  readonly now?: () => number;
}

/**
 * The guard's default {@link DpopReplayStore}: proof ids in a `Map` of this process, each until
 * its own expiry, at most `maxEntries`. Expired entries are dropped from the oldest on every
 * use (amortised O(1): entries are added about in the order they expire), and all of them once
 * the map is full. It fails closed: a full map of live entries refuses the new proof
 * (VerifierUnavailable, 503) instead of evicting one a replay could then pass.
 *
 * @example
 * ```ts
 * const cache = new DpopReplayCache({ maxEntries: 3 });
 * cache.use('id-1', Date.now() + 60_000); // true
 * cache.use('id-1', Date.now() + 60_000); // false: a replay
 * ```
 */
export class DpopReplayCache implements DpopReplayStore {
  readonly maxEntries: number;
  readonly #seen = new Map<string, number>();
  readonly #now: () => number;

  constructor(options: DpopReplayCacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? 200_000;
    if (!Number.isInteger(this.maxEntries) || this.maxEntries < 1) throw new TypeError('maxEntries must be a whole number of at least 1');
    this.#now = options.now ?? Date.now;
  }

  /** Proofs remembered now (expired ones included until they are dropped). */
  get size(): number {
    return this.#seen.size;
  }

  use(id: string, expiresAt: number): boolean {
    const now = this.#now();
    this.#dropExpired(now, false);
    const until = this.#seen.get(id);
    if (until !== undefined && until > now) return false;
    if (until === undefined && this.#seen.size >= this.maxEntries) {
      this.#dropExpired(now, true);
      if (this.#seen.size >= this.maxEntries) {
        throw new VerifierUnavailable(`DPoP replay cache full: ${this.maxEntries} proofs unexpired (raise dpop.replayCache.maxEntries)`);
      }
    }
    // a re-used expired id moves to the end, with its new expiry
    this.#seen.delete(id);
    this.#seen.set(id, expiresAt);
    return true;
  }

  /** Drops expired entries: from the oldest up to the first live one, or (`all`) every one. */
  #dropExpired(now: number, all: boolean): void {
    for (const [id, until] of this.#seen) {
      if (until <= now) this.#seen.delete(id);
      else if (!all) return;
    }
  }
}
