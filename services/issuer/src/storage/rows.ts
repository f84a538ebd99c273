import type { Knex } from 'knex';

import type { Page, PageQuery } from '../domain/pages.js';

/** Inserts one row into `table` and returns it as stored (defaults filled in). */
export async function insertReturning<Row>(db: Knex, table: string, values: Record<string, unknown>): Promise<Row> {
  const rows: Row[] = await db(table).insert(values).returning('*');
  const row = rows[0];
  if (row === undefined) throw new Error(`insert into ${table} returned no row`);
  return row;
}

/** Reads row `id` of `table` with `FOR UPDATE`: no other transaction changes or deletes it until the caller's ends. */
export async function lockRow<Row extends object>(db: Knex, table: string, id: string): Promise<Row | undefined> {
  return (await db(table).select('*').where({ id }).forUpdate().first()) as Row | undefined;
}

/**
 * Creation order at the precision a page position carries (milliseconds: what a JavaScript
 * Date holds), ties by id, so that listing everything and paging list the same order.
 */
const CREATION = "date_trunc('milliseconds', created_at)";

/** Every row of `table`, oldest first (ties by id, so the order is stable). */
export function listByCreation<Row extends object>(db: Knex, table: string): Promise<Row[]> {
  return db<Row>(table).select('*').orderByRaw(`${CREATION}, id`) as Promise<Row[]>;
}

/** A page of `table` in the order of {@link listByCreation}: `limit` rows after `query.after`. */
export async function pageByCreation<Row extends { id: string; created_at: Date }>(db: Knex, table: string, query: PageQuery): Promise<Page<Row>> {
  const select = db<Row>(table)
    .select('*')
    .orderByRaw(`${CREATION}, id`)
    // one more than asked: whether there is a next page
    .limit(query.limit + 1);
  if (query.after !== undefined) select.whereRaw(`(${CREATION}, id) > (?::timestamptz, ?)`, [query.after.at, query.after.id]);
  const rows = (await select) as Row[];
  const items = rows.slice(0, query.limit);
  const last = items.at(-1);
  return { items, next: rows.length > query.limit && last !== undefined ? { at: new Date(last.created_at).toISOString(), id: last.id } : undefined };
}
