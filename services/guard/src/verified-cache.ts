/** How many trailing characters of a token index the cache (see {@link VerdictCache}). */
const INDEX_CHARS = 32;

interface Entry<T> {
  /** The whole credential: a hit must be equal to it, character for character. */
  readonly credential: string;
  readonly value: T;
  /** Epoch ms after which the entry is never served. */
  readonly until: number;
}

/**
 * A bounded map from a credential (an access token) to what its verification established,
 * each entry served only until its own deadline. Built for the per-request hit path:
 *
 * - The map is indexed by the credential's last {@link INDEX_CHARS} characters (for a JWS, the
 *   tail of the signature) so that a lookup hashes 32 characters, not the whole ~1 kB token that
 *   arrives as a fresh string on every request. A hit is only served when the whole credential
 *   is equal to the stored one, so a credential differing in any character is never served.
 *   A different credential with the same tail only ever misses (and, once verified, replaces
 *   the entry).
 * - `get` is synchronous and allocates nothing but the index string.
 * - An entry is never served at or after its `until`; the expired entry is dropped when met.
 * - At most `maxEntries` entries: the oldest one is evicted first. `maxEntries <= 0` disables
 *   the cache.
 *
 * @example
 * ```ts
 * const cache = new VerdictCache<Principal>(10_000);
 * cache.set(token, principal, expiresAtMs, Date.now());
 * cache.get(token, Date.now()); // the principal until expiresAtMs, then undefined
 * ```
 */
export class VerdictCache<T> {
  readonly #entries = new Map<string, Entry<T>>();

  constructor(readonly maxEntries: number) {}

  /** How many entries are held (expired ones included until they are met or evicted). */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * The value stored for exactly `credential`, if its deadline is still ahead of `now`.
   *
   * @example
   * ```ts
   * const principal = cache.get(token, Date.now());
   * if (principal !== undefined) return principal; // no verification needed
   * ```
   */
  get(credential: string, now: number): T | undefined {
    if (this.maxEntries <= 0) return undefined;
    const index = credential.slice(-INDEX_CHARS);
    const entry = this.#entries.get(index);
    if (entry === undefined || entry.credential !== credential) return undefined;
    if (entry.until <= now) {
      this.#entries.delete(index);
      return undefined;
    }
    return entry.value;
  }

  /**
   * Remembers `value` for `credential` until `until` (epoch ms); nothing is stored when that is
   * not after `now`. Evicts the oldest entry when the cache is full.
   *
   * @example
   * ```ts
   * cache.set(token, principal, Math.min(expMs + toleranceMs, Date.now() + 60_000), Date.now());
   * ```
   */
  set(credential: string, value: T, until: number, now: number): void {
    if (this.maxEntries <= 0 || !(until > now)) return;
    const index = credential.slice(-INDEX_CHARS);
    // a replaced entry (the same token again, or another one with the same tail) becomes the newest
    this.#entries.delete(index);
    while (this.#entries.size >= this.maxEntries) {
      // Map keeps insertion order: the first key is the oldest entry
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) break;
      this.#entries.delete(oldest.value);
    }
    this.#entries.set(index, { credential, value, until });
  }
}
