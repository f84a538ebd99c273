import type { Database } from './db.js';

/** The NOTIFY channel the database triggers write to (migration `change_notifications`). */
export const CHANGES_CHANNEL = 'sigil_changes';

/** Passed to a listener when anything in its table may have changed (TRUNCATE, or missed notifications). */
export const EVERYTHING = '*';

/**
 * The database's own account of which rows changed, so that a replica can cache rows and still
 * see every write made by the CLI, another replica or an operator's SQL as soon as it commits.
 */
export interface ChangeFeed {
  /** True while notifications arrive: only then may a row be served from a cache. */
  readonly live: boolean;
  /** Calls `listener` with the id of each changed row of `table`, or {@link EVERYTHING}. */
  subscribe(table: string, listener: (id: string) => void): void;
  close(): Promise<void>;
}

/**
 * Listens on {@link CHANGES_CHANNEL}. When the listening connection is lost, or comes back,
 * every subscriber hears {@link EVERYTHING}: whatever changed meanwhile was missed.
 *
 * @example
 * const feed = await startChangeFeed(database);
 * feed.subscribe('clients', (id) => (id === EVERYTHING ? cache.clear() : cache.delete(id)));
 */
export async function startChangeFeed(database: Pick<Database, 'listen'>): Promise<ChangeFeed> {
  const listeners = new Map<string, ((id: string) => void)[]>();
  let live = false;
  const tell = (table: string, id: string) => {
    for (const listener of listeners.get(table) ?? []) listener(id);
  };
  const tellEveryone = () => {
    for (const table of listeners.keys()) tell(table, EVERYTHING);
  };
  const stop = await database.listen(
    CHANGES_CHANNEL,
    (payload) => {
      const colon = payload.indexOf(':');
      if (colon > 0) tell(payload.slice(0, colon), payload.slice(colon + 1));
    },
    (now) => {
      live = now;
      tellEveryone();
    },
  );
  return {
    get live() {
      return live;
    },
    subscribe(table, listener) {
      listeners.set(table, [...(listeners.get(table) ?? []), listener]);
    },
    async close() {
      live = false;
      await stop();
    },
  };
}
