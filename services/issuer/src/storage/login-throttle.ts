import type { Knex } from 'knex';

import type { ThrottleStore } from '../domain/login-throttle.js';
import { prepared } from './prepared.js';
import { recordableText } from './text.js';

/** Sign-in failure counters in the `login_throttle` table (keys are free text: see text.ts). */
export function createThrottleStore(db: Knex): ThrottleStore {
  return {
    // a named statement: every sign-in runs it
    async read(keys) {
      const { rows } = await db
        .raw<{ rows: { key: string; locked_until: Date | null }[] }>('SELECT key, locked_until FROM login_throttle WHERE key IN (?, ?, ?)', [
          recordableText(keys[0] ?? ''),
          recordableText(keys[1] ?? ''),
          recordableText(keys[2] ?? ''),
        ])
        .options(prepared('login_throttle_check'));
      // keys come back as stored: the caller compares them with its own, so give back those
      const asGiven = new Map(keys.map((key) => [recordableText(key), key]));
      return rows.map((row) => ({ key: asGiven.get(row.key) ?? row.key, lockedUntil: row.locked_until === null ? null : new Date(row.locked_until) }));
    },

    // one upsert: concurrent failures are all counted
    async countFailure(key, now, windowStart) {
      const result = await db.raw<{ rows: { failures: number }[] }>(
        `INSERT INTO login_throttle (key, failures, window_started_at, locked_until, updated_at)
         VALUES (?, 1, ?, NULL, ?)
         ON CONFLICT (key) DO UPDATE SET
           failures = CASE WHEN login_throttle.window_started_at < ? THEN 1 ELSE login_throttle.failures + 1 END,
           window_started_at = CASE WHEN login_throttle.window_started_at < ? THEN EXCLUDED.window_started_at ELSE login_throttle.window_started_at END,
           updated_at = EXCLUDED.updated_at
         RETURNING failures`,
        [recordableText(key), now, now, windowStart, windowStart],
      );
      return Number(result.rows[0]?.failures ?? 0);
    },

    async lock(key, until) {
      await db('login_throttle').where({ key: recordableText(key) }).update({ locked_until: until });
    },

    async clear(keys) {
      await db('login_throttle').whereIn('key', keys.map(recordableText)).delete();
    },

    async sweep(idleSince, now) {
      await db('login_throttle')
        .where('updated_at', '<', idleSince)
        .andWhere((query) => query.whereNull('locked_until').orWhere('locked_until', '<', now))
        .delete();
    },
  };
}
