import type { Knex } from 'knex';

import { startChangeFeed } from './changes.js';
import type { Database } from './db.js';

/** The server's connection limits: `max_connections` and what of it only superusers may use. */
export interface ConnectionLimits {
  readonly max: number;
  readonly reserved: number;
}

/** Reads `max_connections` and `superuser_reserved_connections` (`SHOW`). */
export async function connectionLimits(db: Knex): Promise<ConnectionLimits> {
  const setting = async (name: 'max_connections' | 'superuser_reserved_connections') => {
    const { rows } = await db.raw<{ rows: Record<string, string>[] }>(`SHOW ${name}`);
    return Number(rows[0]?.[name] ?? Number.NaN);
  };
  return { max: await setting('max_connections'), reserved: await setting('superuser_reserved_connections') };
}

/**
 * Users counted by the parameters of their password hash: the PHC prefix up to the salt
 * (`$argon2id$v=19$m=19456,t=2,p=1`), never the salt or the digest. A hash in no PHC form
 * counts under null.
 */
export async function passwordHashParameters(db: Knex): Promise<{ parameters: string | null; users: number }[]> {
  const { rows } = await db.raw<{ rows: { parameters: string | null; users: number }[] }>(
    // no "?" in the statement: knex would take it for a binding
    `SELECT (regexp_match(password_hash, '^(\\$[a-z0-9-]+\\$(v=[0-9]+\\$)*[^$]*)'))[1] AS parameters, count(*)::int AS users
       FROM users GROUP BY 1 ORDER BY 1`,
  );
  return rows.map((row) => ({ parameters: row.parameters, users: Number(row.users) }));
}

/**
 * Whether change notifications arrive on `database`: a change feed is started, its first
 * heartbeat awaited (at most `timeoutMs`), and closed again.
 */
export async function notificationsArrive(database: Pick<Database, 'listen' | 'knex'>, timeoutMs: number): Promise<boolean> {
  const feed = await startChangeFeed(database, { heartbeatMs: 60_000, heartbeatTimeoutMs: timeoutMs });
  try {
    return feed.live;
  } finally {
    await feed.close();
  }
}
