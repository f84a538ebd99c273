import type { Knex } from 'knex';
import type pg from 'pg';

import { prepared } from './prepared.js';

/** `?` placeholders as pg's `$1…$n`, once per statement name (a name always stands for one text). */
const pgTexts = new Map<string, string>();

function pgText(name: string, sql: string): string {
  let text = pgTexts.get(name);
  if (text === undefined) {
    let position = 0;
    text = sql.replace(/\?/gu, () => `$${(position += 1)}`);
    pgTexts.set(name, text);
  }
  return text;
}

/** Whether `db` is PostgreSQL through pg (the direct path), rather than PGlite (knex's path). */
const onPg = (db: Knex): boolean => ((db.client as Knex.Client).config as Knex.Config).client === 'pg';

type Callback = (error: Error | null, result: pg.QueryResult) => void;

/**
 * One statement on a connection of knex's pool, handed to pg directly: the same pool, timeouts
 * and connection handling (db.ts), without knex's query runner, which costs about as much CPU
 * per statement as the statement itself (docs/storage.md#the-direct-path). Only for the
 * statements token requests and sign-ins run every time (in a transaction: on its connection);
 * `sql` uses `?` placeholders and no `?` otherwise.
 * On PGlite (one session, no pool) it runs through knex as every other statement does.
 */
export async function queryDirect<Row>(db: Knex, name: string, sql: string, bindings: readonly unknown[]): Promise<Row[]> {
  const client = db.client as Knex.Client;
  if (!onPg(db)) {
    const { rows } = await db.raw<{ rows: Row[] }>(sql, bindings as Knex.RawBinding[]).options(prepared(name));
    return rows;
  }
  // knex's own event for a statement it runs, so that whoever watches the statements (tests, a debugging listener) sees these too
  if (client.listenerCount('query') > 0) client.emit('query', { method: 'raw', sql, bindings, options: prepared(name), direct: true });
  const connection = (await client.acquireConnection()) as pg.Client;
  try {
    // the callback form: the one db.ts watches for read timeouts
    const result = await new Promise<pg.QueryResult>((resolve, reject) => {
      const callback: Callback = (error, answer) => (error === null ? resolve(answer) : reject(error));
      (connection.query as unknown as (config: pg.QueryConfig, callback: Callback) => void)({ name: prepared(name).name, text: pgText(name, sql), values: [...bindings] }, callback);
    });
    return result.rows as Row[];
  } finally {
    await client.releaseConnection(connection);
  }
}

/** `:name` placeholders as `?`, and the names in their order, once per statement name. */
const positional = new Map<string, { readonly sql: string; readonly names: readonly string[] }>();

/**
 * {@link queryDirect} for a statement written with knex's named placeholders (`:name`, not
 * followed by `:` and not part of a `::` cast): each becomes a `?`, its value taken from
 * `bindings` by name. On PGlite it runs through knex with the named bindings as given.
 */
export async function queryDirectNamed<Row>(db: Knex, name: string, sql: string, bindings: Readonly<Record<string, unknown>>): Promise<Row[]> {
  if (!onPg(db)) {
    const { rows } = await db.raw<{ rows: Row[] }>(sql, bindings as Record<string, Knex.RawBinding>).options(prepared(name));
    return rows;
  }
  let known = positional.get(name);
  if (known === undefined) {
    const names: string[] = [];
    const text = sql.replace(/(?<![:\w]):([A-Za-z_]\w*)(?!:)/gu, (_match, key: string) => {
      names.push(key);
      return '?';
    });
    known = { sql: text, names };
    positional.set(name, known);
  }
  return queryDirect<Row>(db, name, known.sql, known.names.map((key) => {
    if (!(key in bindings)) throw new Error(`statement ${name}: no value for :${key}`);
    return bindings[key];
  }));
}
