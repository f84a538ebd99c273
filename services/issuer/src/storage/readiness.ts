import type { Knex } from 'knex';

/** Whether the database answers a trivial statement within `timeoutMs`. */
export async function databaseReachable(db: Knex, timeoutMs: number): Promise<boolean> {
  try {
    await db.raw('select 1').timeout(timeoutMs, { cancel: true });
    return true;
  } catch {
    return false;
  }
}
