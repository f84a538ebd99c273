import type { Knex } from 'knex';

/** Inserts one row into `table` and returns it as stored (defaults filled in). */
export async function insertReturning<Row>(db: Knex, table: string, values: Record<string, unknown>): Promise<Row> {
  const rows: Row[] = await db(table).insert(values).returning('*');
  const row = rows[0];
  if (row === undefined) throw new Error(`insert into ${table} returned no row`);
  return row;
}

/** Every row of `table`, oldest first (ties by id, so the order is stable). */
export function listByCreation<Row extends object>(db: Knex, table: string): Promise<Row[]> {
  return db<Row>(table).select('*').orderBy('created_at').orderBy('id') as Promise<Row[]>;
}
