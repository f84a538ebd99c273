import { randomUUID } from 'node:crypto';

import type { Database } from './db.js';

/** The NOTIFY channel the database triggers write to (migration `change_notifications`). */
export const CHANGES_CHANNEL = 'sigil_changes';

/** Passed to a listener when anything in its table may have changed (TRUNCATE, or missed notifications). */
export const EVERYTHING = '*';

/** The feed's own messages on the channel: `sigil-heartbeat:<nonce>`. */
const HEARTBEAT = 'sigil-heartbeat';

export interface ChangeFeedOptions {
  /** How often the feed sends itself a heartbeat through the connection pool, in ms. */
  readonly heartbeatMs?: number;
  /** How long a heartbeat may take to come back before the feed stops trusting itself, in ms. */
  readonly heartbeatTimeoutMs?: number;
}

/**
 * The database's own account of which rows changed, so that a replica can cache rows and still
 * see every write made by the CLI, another replica or an operator's SQL as soon as it commits.
 */
export interface ChangeFeed {
  /** True while notifications are known to arrive: only then may a row be served from a cache. */
  readonly live: boolean;
  /** Calls `listener` with the id of each changed row of `table`, or {@link EVERYTHING}. */
  subscribe(table: string, listener: (id: string) => void): void;
  close(): Promise<void>;
}

/**
 * Listens on {@link CHANGES_CHANNEL}. The feed is live only while its listening connection is up
 * and its own heartbeat, sent through an ordinary pooled connection, comes back in time: a
 * connection that died without a word, or a pooler that does not carry LISTEN, makes it not live
 * within a heartbeat. Whenever it stops or starts being live, every subscriber hears
 * {@link EVERYTHING}: whatever changed meanwhile may have been missed. Resolves once the first
 * heartbeat came back (or did not, in time).
 *
 * @example
 * const feed = await startChangeFeed(database);
 * feed.subscribe('clients', (id) => (id === EVERYTHING ? cache.clear() : cache.delete(id)));
 */
export async function startChangeFeed(database: Pick<Database, 'listen' | 'knex'>, options: ChangeFeedOptions = {}): Promise<ChangeFeed> {
  const feed = new HeartbeatFeed(database, options.heartbeatMs ?? 10_000, options.heartbeatTimeoutMs ?? 3000);
  await feed.start();
  return feed;
}

/** The heartbeat on its way: its nonce, its timeout and whoever waits for it. */
interface PendingBeat {
  readonly nonce: string;
  readonly timer: NodeJS.Timeout;
  readonly arrived: () => void;
}

class HeartbeatFeed implements ChangeFeed {
  readonly #listeners = new Map<string, ((id: string) => void)[]>();
  #listening = false;
  #heard = false;
  #live = false;
  #closed = false;
  #pending: PendingBeat | undefined;
  #heartbeats: NodeJS.Timeout | undefined;
  #stop: (() => Promise<void>) | undefined;

  constructor(
    private readonly database: Pick<Database, 'listen' | 'knex'>,
    private readonly heartbeatMs: number,
    private readonly heartbeatTimeoutMs: number,
  ) {}

  get live(): boolean {
    return this.#live;
  }

  subscribe(table: string, listener: (id: string) => void): void {
    this.#listeners.set(table, [...(this.#listeners.get(table) ?? []), listener]);
  }

  async start(): Promise<void> {
    this.#stop = await this.database.listen(CHANGES_CHANNEL, (payload) => this.#received(payload), (listening) => this.#listeningChanged(listening));
    await this.#beat();
    this.#heartbeats = setInterval(() => void this.#beat(), this.heartbeatMs);
    this.#heartbeats.unref();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#heartbeats);
    if (this.#pending !== undefined) clearTimeout(this.#pending.timer);
    this.#update();
    await this.#stop?.();
  }

  #tell(table: string, id: string): void {
    for (const listener of this.#listeners.get(table) ?? []) listener(id);
  }

  /** Live or not, from what is known now; every subscriber hears {@link EVERYTHING} on a change. */
  #update(): void {
    const now = this.#listening && this.#heard && !this.#closed;
    if (now === this.#live) return;
    this.#live = now;
    for (const table of this.#listeners.keys()) this.#tell(table, EVERYTHING);
  }

  /** Sends a heartbeat through the pool; resolves when it comes back or times out. */
  #beat(): Promise<void> {
    return new Promise((resolve) => {
      if (this.#closed) {
        resolve();
        return;
      }
      if (this.#pending !== undefined) clearTimeout(this.#pending.timer);
      const nonce = randomUUID();
      const timer = setTimeout(() => {
        if (this.#pending?.nonce !== nonce) return;
        this.#pending = undefined;
        this.#heard = false;
        this.#update();
        resolve();
      }, this.heartbeatTimeoutMs);
      timer.unref();
      this.#pending = { nonce, timer, arrived: resolve };
      this.database.knex.raw('SELECT pg_notify(?, ?)', [CHANGES_CHANNEL, `${HEARTBEAT}:${nonce}`]).catch(() => {
        // the database is unreachable: the timeout marks the feed not live
      });
    });
  }

  /** A notification: a changed row (`table:id`), or one of our heartbeats. */
  #received(payload: string): void {
    const colon = payload.indexOf(':');
    if (colon <= 0) return;
    const table = payload.slice(0, colon);
    const id = payload.slice(colon + 1);
    if (table !== HEARTBEAT) {
      this.#tell(table, id);
      return;
    }
    const pending = this.#pending;
    if (pending?.nonce !== id) return;
    clearTimeout(pending.timer);
    this.#pending = undefined;
    this.#heard = true;
    this.#update();
    pending.arrived();
  }

  #listeningChanged(listening: boolean): void {
    this.#listening = listening;
    if (!listening) this.#heard = false;
    this.#update();
    // back: prove it with a heartbeat before trusting it again
    if (listening) void this.#beat();
  }
}
