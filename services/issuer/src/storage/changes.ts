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
  const heartbeatMs = options.heartbeatMs ?? 10_000;
  const heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? 3000;
  const listeners = new Map<string, ((id: string) => void)[]>();
  let listening = false;
  let heard = false;
  let live = false;
  let closed = false;
  /** The heartbeat on its way, if any. */
  let pending: { nonce: string; timer: NodeJS.Timeout; arrived: () => void } | undefined;

  const tell = (table: string, id: string) => {
    for (const listener of listeners.get(table) ?? []) listener(id);
  };
  const update = () => {
    const now = listening && heard && !closed;
    if (now === live) return;
    live = now;
    for (const table of listeners.keys()) tell(table, EVERYTHING);
  };

  const beat = (): Promise<void> =>
    new Promise((resolve) => {
      if (closed) {
        resolve();
        return;
      }
      if (pending !== undefined) clearTimeout(pending.timer);
      const nonce = randomUUID();
      const timer = setTimeout(() => {
        if (pending?.nonce !== nonce) return;
        pending = undefined;
        heard = false;
        update();
        resolve();
      }, heartbeatTimeoutMs);
      timer.unref();
      pending = { nonce, timer, arrived: resolve };
      database.knex.raw('SELECT pg_notify(?, ?)', [CHANGES_CHANNEL, `${HEARTBEAT}:${nonce}`]).catch(() => {
        // the database is unreachable: the timeout marks the feed not live
      });
    });

  const stop = await database.listen(
    CHANGES_CHANNEL,
    (payload) => {
      const colon = payload.indexOf(':');
      if (colon <= 0) return;
      const table = payload.slice(0, colon);
      const id = payload.slice(colon + 1);
      if (table !== HEARTBEAT) {
        tell(table, id);
        return;
      }
      if (pending?.nonce !== id) return;
      clearTimeout(pending.timer);
      const { arrived } = pending;
      pending = undefined;
      heard = true;
      update();
      arrived();
    },
    (now) => {
      listening = now;
      if (!now) heard = false;
      update();
      // back: prove it with a heartbeat before trusting it again
      if (now) void beat();
    },
  );
  await beat();
  const heartbeats = setInterval(() => void beat(), heartbeatMs);
  heartbeats.unref();

  return {
    get live() {
      return live;
    },
    subscribe(table, listener) {
      listeners.set(table, [...(listeners.get(table) ?? []), listener]);
    },
    async close() {
      closed = true;
      clearInterval(heartbeats);
      if (pending !== undefined) clearTimeout(pending.timer);
      update();
      await stop();
    },
  };
}
