import type { Knex } from 'knex';

/** The probe each database handle has on its way, shared by every caller until it settles. */
const probes = new WeakMap<Knex, Promise<boolean>>();

function probe(db: Knex): Promise<boolean> {
  let running = probes.get(db);
  if (running === undefined) {
    // bounded by the pool's own timeouts (connect, acquire, statement): it settles, late at worst
    running = db.raw('select 1').then(
      () => true,
      () => false,
    );
    const settled = running;
    void settled.finally(() => {
      if (probes.get(db) === settled) probes.delete(db);
    });
    probes.set(db, running);
  }
  return running;
}

/**
 * Whether the database answers a trivial statement within `timeoutMs`; false after `timeoutMs`
 * whatever the network does. The timer does not wait for the statement (a cancel would need a
 * new connection, which a silent partition hangs), and at most one statement is in flight:
 * callers meanwhile share it, so a hung probe cannot pile up connections.
 */
export function databaseReachable(db: Knex, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    timer.unref();
    void probe(db).then((reachable) => {
      clearTimeout(timer);
      resolve(reachable);
    });
  });
}
