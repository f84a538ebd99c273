import type { Knex } from 'knex';

import { queryDirect } from './direct.js';

const TABLE = 'replay_detections';

/** Used one-time identifiers (the `jti`s of client assertions and DPoP proofs), shared by every replica. */
export interface ReplayStore {
  /**
   * Records `id` as used until `expiresAt`, in one statement: of any number of calls with one
   * id, at once or not, on any replica, exactly one answers true while the first is unexpired.
   * An expired record is replaced (and that call answers true).
   * @param id a fixed-length digest of what must be used once (at most 64 bytes)
   */
  firstUse(id: Buffer, expiresAt: Date): Promise<boolean>;
  /** Deletes expired records; how many. */
  sweepExpired(): Promise<number>;
}

export function createReplayStore(db: Knex): ReplayStore {
  return {
    async firstUse(id, expiresAt) {
      if (id.length === 0 || id.length > 64) throw new RangeError('a replay id is a digest of 1 to 64 bytes');
      // a concurrent insert of the same id waits for the first to commit, then finds it unexpired
      const rows = await queryDirect(
        db,
        'replay_first_use',
        `INSERT INTO ${TABLE} (id, expires_at) VALUES (?, ?)
         ON CONFLICT (id) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE ${TABLE}.expires_at <= CURRENT_TIMESTAMP
         RETURNING 1`,
        [id, expiresAt],
      );
      return rows.length > 0;
    },

    async sweepExpired() {
      // returning() rather than delete()'s count: knex-pglite returns no count for deletes
      const removed = await db(TABLE).where('expires_at', '<', db.fn.now()).delete().returning('expires_at');
      return removed.length;
    },
  };
}
