import path from 'node:path';
import { fileURLToPath } from 'node:url';

import type { Knex } from 'knex';
import type pg from 'pg';

import { lockDataDir } from './embedded-lock.js';
import { createOwnerOnlyFiles, restrictToOwner } from './owner-only.js';

/**
 * The drivers are loaded when a database is opened, each only for the kind opened: a process
 * that opens none (a CLI command refused for its arguments, `sigil --help`) starts without them
 * (about a third of a second), and one on PostgreSQL never loads the embedded database.
 */
const drivers = {
  // knex's named export type-checks but is undefined in real Node ESM (docs/storage.md#knex-in-node-esm): take it from the default
  knex: async () => (await import('knex')).default.knex,
  pg: async () => (await import('pg')).default,
  pglite: async () => ({ PGlite: (await import('@electric-sql/pglite')).PGlite, ClientPgLite: (await import('knex-pglite')).default }),
};

export type DatabaseKind = 'postgres' | 'embedded';

/** A database pool now: connections lent out, connections idle, and queries waiting for one. */
export interface DatabasePoolState {
  readonly inUse: number;
  readonly idle: number;
  readonly waiting: number;
  readonly max: number;
}

/** The members of knex's pool (tarn) read here. */
interface TarnPool {
  numUsed(): number;
  numFree(): number;
  numPendingAcquires(): number;
  readonly max: number;
}

function isTarnPool(pool: unknown): pool is TarnPool {
  const candidate = pool as Partial<Record<keyof TarnPool, unknown>> | undefined;
  return typeof candidate?.numUsed === 'function' && typeof candidate.numFree === 'function' && typeof candidate.numPendingAcquires === 'function';
}

/**
 * The state of `db`'s pool (knex's tarn pool: for PostgreSQL up to DATABASE_POOL_MAX
 * connections; for the embedded database the pool of its one session), or undefined before
 * knex made its pool or after it was destroyed. Cheap: counters kept by the pool.
 */
export function databasePoolState(db: Knex): DatabasePoolState | undefined {
  const pool: unknown = db.client.pool;
  if (!isTarnPool(pool)) return undefined;
  return { inUse: pool.numUsed(), idle: pool.numFree(), waiting: pool.numPendingAcquires(), max: typeof pool.max === 'number' ? pool.max : 0 };
}

export interface Database {
  readonly knex: Knex;
  readonly kind: DatabaseKind;
  /**
   * Receives the NOTIFY messages of `channel` until the returned function is called. `onState`
   * says whether messages are being received: false when the listening connection is lost
   * (whatever happens meanwhile is missed), true once it listens again.
   */
  listen(channel: string, onMessage: (payload: string) => void, onState: (live: boolean) => void): Promise<() => Promise<void>>;
  /** Closes the connections and, for the embedded database, releases the data directory. */
  close(): Promise<void>;
}

/** After a lost listening connection: the first retry, and the longest wait between retries. */
const LISTEN_RETRY_MS = { first: 500, max: 10_000 };

/**
 * LISTEN on a connection of its own (a pooled one would be handed to other queries), re-opened
 * after any failure with a growing pause; `onState` follows the connection.
 */
async function listenOnPostgres(
  databaseUrl: string,
  timeoutMs: number,
  channel: string,
  onMessage: (payload: string) => void,
  onState: (live: boolean) => void,
  log: (level: 'warn' | 'error', message: string) => void,
): Promise<() => Promise<void>> {
  let stopped = false;
  let current: pg.Client | undefined;
  let retry: NodeJS.Timeout | undefined;
  let pause = LISTEN_RETRY_MS.first;

  const { Client } = await drivers.pg();
  const connect = async (): Promise<void> => {
    // keepalive: a peer gone without a word is noticed by the kernel rather than never
    const client = new Client({ connectionString: databaseUrl, connectionTimeoutMillis: timeoutMs, keepAlive: true });
    current = client;
    let lost = false;
    const onLost = (error?: Error) => {
      if (lost) return;
      lost = true;
      client.removeAllListeners('notification');
      void client.end().catch(() => undefined);
      if (stopped) return;
      onState(false);
      log('warn', `change notifications interrupted (${error?.message ?? 'connection closed'}); retrying in ${pause} ms`);
      retry = setTimeout(() => void connect().catch(() => undefined), pause);
      retry.unref();
      pause = Math.min(pause * 2, LISTEN_RETRY_MS.max);
    };
    client.on('error', onLost);
    client.on('end', () => onLost());
    client.on('notification', (message) => {
      if (message.channel === channel && message.payload !== undefined) onMessage(message.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${client.escapeIdentifier(channel)}`);
    } catch (error) {
      onLost(error as Error);
      throw error;
    }
    if (stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    pause = LISTEN_RETRY_MS.first;
    onState(true);
  };

  // the first attempt's failure is the caller's: it starts without notifications and keeps retrying
  await connect().catch(() => undefined);
  return async () => {
    stopped = true;
    clearTimeout(retry);
    current?.removeAllListeners();
    await current?.end().catch(() => undefined);
  };
}

export interface DatabaseOptions {
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  /**
   * Bounds connecting, each statement and the wait for a pooled connection, in ms
   * (DATABASE_TIMEOUT_MS): an unreachable database fails requests fast instead of holding them.
   */
  readonly timeoutMs?: number;
  /** The most connections the pool opens (DATABASE_POOL_MAX). */
  readonly poolMax?: number;
  /** Where knex's own warnings go (connection errors…); default: dropped. */
  readonly log?: (level: 'warn' | 'error', message: string) => void;
  /** Called when the embedded data directory lock is lost (another process took it). */
  readonly onLockCompromised?: (error: Error) => void;
}

/** The one schema, shared by both back ends. */
export const migrationsDirectory = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../../../migrations',
);

export function embeddedDatabasePath(dataDir: string): string {
  return path.join(dataDir, 'pgdata');
}

const DEFAULT_TIMEOUT_MS = 5000;
const DEFAULT_POOL_MAX = 10;
/**
 * How much later than the server's own `statement_timeout` the client stops waiting for an
 * answer: a slow statement is cancelled by the server (its connection stays usable), a silent
 * one is given up by the client.
 */
const READ_TIMEOUT_MARGIN_MS = 500;

/** pg's settings for the pool's connections: every wait bounded by `timeoutMs`. */
function boundedConnection(databaseUrl: string, timeoutMs: number): Knex.PgConnectionConfig {
  return {
    connectionString: databaseUrl,
    connectionTimeoutMillis: timeoutMs,
    statement_timeout: timeoutMs,
    query_timeout: timeoutMs + READ_TIMEOUT_MARGIN_MS,
    keepAlive: true,
  };
}

type QueryCallback = (error: Error | null, result: unknown) => void;

/**
 * A statement given up by the client (pg's read timeout) leaves its connection waiting for an
 * answer that may never come: statements queued behind it, a transaction's ROLLBACK among
 * them, would each wait out the timeout again. Such a connection is closed at once, which
 * fails what is queued on it and makes the pool discard it. knex always queries with a callback.
 */
function closeOnReadTimeout(connection: pg.Client, done: (error: Error | null, connection: pg.Client) => void): void {
  const query = connection.query.bind(connection) as unknown as (...args: unknown[]) => unknown;
  const watched = (...args: unknown[]) => {
    const [config, callback] = args;
    if (args.length !== 2 || typeof callback !== 'function') return query(...args);
    return query(config, (error: Error | null, result: unknown) => {
      if (error?.message === 'Query read timeout') void connection.end().catch(() => undefined);
      (callback as QueryCallback)(error, result);
    });
  };
  Object.assign(connection, { query: watched });
  done(null, connection);
}

/**
 * Opens the configured database: PostgreSQL through `pg` when a URL is given, otherwise
 * the embedded PGlite database under `dataDir`, owned exclusively by this process.
 */
export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  const text = (message: unknown) => (typeof message === 'string' ? message : String((message as Error)?.message ?? message));
  const log = {
    warn: (message: unknown) => options.log?.('warn', text(message)),
    error: (message: unknown) => options.log?.('error', text(message)),
    deprecate: () => undefined,
    debug: () => undefined,
  };
  const knex = await drivers.knex();
  if (options.databaseUrl !== undefined) {
    const databaseUrl = options.databaseUrl;
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const instance = knex({
      log,
      // a failed statement's message names the statement, not the request's values in it
      compileSqlOnError: false,
      client: 'pg',
      connection: boundedConnection(databaseUrl, timeoutMs),
      // min 0: no connection is kept for its own sake, so none outlives an outage unnoticed
      pool: { min: 0, max: options.poolMax ?? DEFAULT_POOL_MAX, afterCreate: closeOnReadTimeout },
      acquireConnectionTimeout: timeoutMs,
    });
    return {
      knex: instance,
      kind: 'postgres',
      listen: (channel, onMessage, onState) =>
        listenOnPostgres(databaseUrl, timeoutMs, channel, onMessage, onState, (level, message) => options.log?.(level, message)),
      close: () => instance.destroy(),
    };
  }

  const { PGlite, ClientPgLite } = await drivers.pglite();
  // the data directory's files are the owner's only: those created from now on, and (below) those PGlite wrote before
  createOwnerOnlyFiles();
  const release = await lockDataDir(
    options.dataDir,
    options.onLockCompromised ??
      ((error) => {
        throw error;
      }),
  );
  // one session, shared by knex and the listener (PGlite delivers a NOTIFY to its own session)
  const pglite = new PGlite(embeddedDatabasePath(options.dataDir));
  try {
    await pglite.waitReady;
    await restrictToOwner(embeddedDatabasePath(options.dataDir));
  } catch (error) {
    await pglite.close().catch(() => undefined);
    await release();
    throw error;
  }
  const instance = knex({
    log,
    compileSqlOnError: false,
    client: ClientPgLite,
    dialect: 'postgres',
    // knex-pglite's own option (knex's types know only its built-in drivers' options)
    connection: { pglite } as Knex.StaticConnectionConfig,
    acquireConnectionTimeout: 30_000,
  });
  return {
    knex: instance,
    kind: 'embedded',
    listen: async (channel, onMessage, onState) => {
      const unlisten = await pglite.listen(channel, onMessage);
      onState(true);
      return () => unlisten();
    },
    close: async () => {
      try {
        await instance.destroy();
      } finally {
        await release();
      }
    },
  };
}

/** Any number: the advisory lock processes migrating one PostgreSQL database queue on. */
const MIGRATION_QUEUE_LOCK = 0x5167_6d69; // "Sgmi"

/**
 * Applies every pending migration. On PostgreSQL, processes starting together queue on an
 * advisory lock, held by a transaction on one pooled connection while the migrations run on
 * another: each waits its turn (however long the one before takes) and then finds nothing left
 * to do, rather than polling knex's own lock. Knex's lock still guards what does not queue (an
 * older version, a pool of one connection); while another process holds it, this one waits, up to
 * a minute, and tries again.
 */
export async function migrate(db: Knex): Promise<string[]> {
  const config = db.client.config as Knex.Config;
  const poolMax = typeof config.pool?.max === 'number' ? config.pool.max : 1;
  if (config.client !== 'pg' || poolMax < 2) return migrateTakingTurns(db);
  return db.transaction(async (queue) => {
    // waiting in the queue is not a slow statement: another process is migrating
    await queue.raw('SET LOCAL statement_timeout = 0');
    // and the queue's transaction sits idle while the migrations run on another connection
    await queue.raw('SET LOCAL idle_in_transaction_session_timeout = 0');
    await queue.raw('SELECT pg_advisory_xact_lock(?)', [MIGRATION_QUEUE_LOCK]);
    return migrateTakingTurns(db);
  });
}

async function migrateTakingTurns(db: Knex): Promise<string[]> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const [, applied] = (await db.migrate.latest({
        directory: migrationsDirectory,
        loadExtensions: ['.js'],
        tableName: 'knex_migrations',
      })) as [number, string[]];
      return applied;
    } catch (error) {
      // another process holds the lock, or created knex's own tables at the same moment
      // (duplicate_table, duplicate_object for the table's row type, unique_violation): wait and try again
      const code = (error as { code?: unknown }).code;
      // or waited on the other process's lock past DATABASE_TIMEOUT_MS (query_canceled by statement_timeout)
      const contended = (error as Error).name === 'MigrationLocked' || code === '42P07' || code === '42710' || code === '23505' || code === '57014';
      if (!contended || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 400));
    }
  }
}
