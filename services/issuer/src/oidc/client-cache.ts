import { LRUCache } from 'lru-cache';
import type { AdapterPayload } from 'oidc-provider';

import { EVERYTHING, type ChangeFeed } from '../storage/changes.js';

export interface ClientCacheOptions {
  /** Most clients kept (default 20,000; each about 1.6–1.8 KB of heap once the engine's client is made, see docs/engine.md). */
  readonly max?: number;
  /** How long a client is kept without being changed, in ms (default 1 hour): a bound in case a notification is lost. */
  readonly ttlMs?: number;
  /** How long "no such client" is kept, in ms (spares the database a flood of unknown ids). */
  readonly missingTtlMs?: number;
  /** Told of each lookup: answered from the cache (true) or read from the database (false; also while the cache is bypassed). */
  readonly onLookup?: (hit: boolean) => void;
}

/**
 * What the cache holds for an id: whether the client exists, its metadata as JSON text until
 * the engine has made its client from it, and that client for the engine that asked last (one
 * per key set: a key change builds a new engine and the old one only finishes its requests).
 * Once the engine's client is made, the text is dropped: the client holds everything the token
 * path reads, and another engine, or {@link ClientCache.find}, reads the row again.
 */
interface Entry {
  readonly exists: boolean;
  text: string | undefined;
  /** The engine `made` belongs to. */
  engine?: object;
  /** The engine's validated client: the value itself, never the promise that made it (see {@link ClientCache.instance}). */
  made?: unknown;
  /** While the engine validates the metadata: what concurrent lookups wait for. Dropped once settled. */
  making?: Promise<unknown>;
}

/** A failure of the loader itself (as opposed to a load abandoned because the row changed). */
class LoadFailed extends Error {
  constructor(readonly original: unknown) {
    super('client load failed');
  }
}

/**
 * Client metadata by id, read through to the database and kept until the database says the
 * row changed (the `clients` trigger's notifications, see {@link ChangeFeed}). While the feed
 * is not live every read goes to the database. Concurrent reads of one id share one query,
 * and a load that a change notification overtakes is never stored.
 *
 * @example
 * const clients = new ClientCache((id) => loadClientMetadata(db, id), feed);
 * const metadata = await clients.find('3f1c…');
 */
export class ClientCache {
  readonly #load: (id: string) => Promise<AdapterPayload | undefined>;
  readonly #feed: ChangeFeed;
  readonly #missingTtlMs: number;
  readonly #entries: LRUCache<string, Entry>;
  readonly #onLookup: (hit: boolean) => void;

  constructor(load: (id: string) => Promise<AdapterPayload | undefined>, feed: ChangeFeed, options: ClientCacheOptions = {}) {
    this.#load = load;
    this.#feed = feed;
    this.#missingTtlMs = options.missingTtlMs ?? 10_000;
    this.#onLookup = options.onLookup ?? (() => undefined);
    this.#entries = new LRUCache<string, Entry>({
      max: options.max ?? 20_000,
      // changes arrive as notifications: the lifetime only bounds the cost of a lost one
      ttl: options.ttlMs ?? 60 * 60_000,
      fetchMethod: async (id, _stale, { options: entryOptions }) => {
        let metadata: AdapterPayload | undefined;
        try {
          metadata = await this.#load(id);
        } catch (error) {
          throw new LoadFailed(error);
        }
        if (metadata === undefined) entryOptions.ttl = this.#missingTtlMs;
        return { exists: metadata !== undefined, text: metadata === undefined ? undefined : JSON.stringify(metadata) };
      },
    });
    feed.subscribe('clients', (id) => {
      if (id === EVERYTHING) this.#entries.clear();
      else this.#entries.delete(id);
    });
  }

  /** Reads through the cache, telling `onLookup` whether it was a hit. */
  async #fetch(id: string): Promise<Entry | undefined> {
    const status: LRUCache.Status<string, Entry> = {};
    try {
      return await this.#entries.fetch(id, { status });
    } finally {
      this.#onLookup(status.fetch === 'hit');
    }
  }

  /** Reads from the database, the cache bypassed (the feed is not live). */
  #bypass(id: string): Promise<AdapterPayload | undefined> {
    this.#onLookup(false);
    return this.#load(id);
  }

  /**
   * Drops the cached copy of client `id` now: a change made in this process (an admin command)
   * is in effect here when it answers, not only once its notification comes back.
   */
  forget(id: string): void {
    this.#entries.delete(id);
  }

  /**
   * The client's metadata (a copy the caller may change), or undefined when there is no such
   * client. Once the engine made its client, this reads the row again: the engine's lookup
   * (after a key change) and the admin API's token check are the callers, and the latter uses
   * the engine's client instead.
   */
  async find(id: string): Promise<AdapterPayload | undefined> {
    if (!this.#feed.live) return this.#bypass(id);
    let entry: Entry | undefined;
    try {
      entry = await this.#fetch(id);
    } catch (error) {
      if (error instanceof LoadFailed) throw error.original;
      // the row changed while it was being read: read it again, uncached
      return this.#load(id);
    }
    if (entry?.exists !== true) return undefined;
    // the text is gone once the engine made its client: read the row
    return entry.text === undefined ? this.#load(id) : metadataOf(entry.text);
  }

  /**
   * The engine's client object for `id`, made by `make` (the engine's own lookup, which reads
   * the metadata through {@link find} and validates it) once per engine for as long as the
   * metadata stays cached. The engine keeps only its 100 latest clients and validates the
   * metadata again on every other lookup; this keeps as many as the cache does.
   *
   * Only the resolved client is kept. A promise made during a request carries that request's
   * async context (the engine's AsyncLocalStorage holds its koa context: the request, the
   * response, the token issued), so a kept promise kept all of it, about 12 KB per client.
   */
  async instance<T extends object>(engine: object, id: string, make: () => Promise<T | undefined>): Promise<T | undefined> {
    if (!this.#feed.live) {
      this.#onLookup(false);
      return make();
    }
    let entry: Entry | undefined;
    try {
      entry = await this.#fetch(id);
    } catch (error) {
      if (error instanceof LoadFailed) throw error.original;
      return make();
    }
    if (entry === undefined) return make();
    if (!entry.exists) return undefined;
    if (entry.engine === engine && entry.made !== undefined) return entry.made as T;
    if (entry.engine === engine && entry.making !== undefined) return (await entry.making) as T | undefined;
    const cached = entry;
    const making = make();
    cached.engine = engine;
    cached.made = undefined;
    cached.making = making;
    try {
      const made = await making;
      if (cached.making === making && made !== undefined) {
        cached.made = made;
        cached.text = undefined;
      }
      return made;
    } finally {
      // settled: a failure is not kept (the next lookup tries again), nor the promise
      if (cached.making === making) cached.making = undefined;
    }
  }

  /** How many ids are cached (for tests and metrics). */
  get size(): number {
    return this.#entries.size;
  }
}

/**
 * The metadata, parsed from its JSON text: a copy the caller may change, made of this realm's
 * plain objects (the engine accepts a client's `jwks` keys only if `key.constructor ===
 * Object`, which `structuredClone`'s copies are not where the realm differs from node's own,
 * under jest's VM, say).
 */
function metadataOf(text: string): AdapterPayload {
  return JSON.parse(text) as AdapterPayload;
}
