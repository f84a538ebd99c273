import path from 'node:path';
import { fileURLToPath } from 'node:url';

import knexModule from 'knex';
import type { Knex } from 'knex';
import ClientPgLite from 'knex-pglite';

import { lockDataDir } from './embedded-lock.js';

// knex's named export crashes in real Node ESM (ENGINE-NOTES): take it from the default.
const { knex } = knexModule;

export type DatabaseKind = 'postgres' | 'embedded';

export interface Database {
  readonly knex: Knex;
  readonly kind: DatabaseKind;
  /** Closes the connections and, for the embedded database, releases the data directory. */
  close(): Promise<void>;
}

export interface DatabaseOptions {
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
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
  if (options.databaseUrl !== undefined) {
    const instance = knex({
      log,
      client: 'pg',
      connection: options.databaseUrl,
      pool: { min: 0, max: 10 },
      acquireConnectionTimeout: 10_000,
    });
    return { knex: instance, kind: 'postgres', close: () => instance.destroy() };
  }

  const release = await lockDataDir(
    options.dataDir,
    options.onLockCompromised ??
      ((error) => {
        throw error;
      }),
  );
  const instance = knex({
    log,
    client: ClientPgLite,
    dialect: 'postgres',
    connection: { filename: embeddedDatabasePath(options.dataDir) },
    acquireConnectionTimeout: 30_000,
  });
  return {
    knex: instance,
    kind: 'embedded',
    close: async () => {
      try {
        await instance.destroy();
      } finally {
        await release();
      }
    },
  };
}

/**
 * Applies every pending migration. Replicas starting together take turns: while another
 * process holds knex's migration lock (or is creating knex's tables) this one waits, up to a
 * minute, and tries again.
 */
export async function migrate(db: Knex): Promise<string[]> {
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
      // (duplicate_table, unique_violation): wait and try again
      const code = (error as { code?: unknown }).code;
      const contended = (error as Error).name === 'MigrationLocked' || code === '42P07' || code === '23505';
      if (!contended || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 400));
    }
  }
}
