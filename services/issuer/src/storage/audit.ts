import type { Knex } from 'knex';

import type { AuditStore } from '../domain/audit.js';
import { prepared } from './prepared.js';
import { recordableText } from './text.js';

/** The `auth_events` table. */
export function createAuditStore(db: Knex): AuditStore {
  return {
    // a named statement: every sign-in writes one
    async append(event) {
      await db
        .raw('INSERT INTO auth_events (event, user_id, username, client_id, ip, detail) VALUES (?, ?, ?, ?, ?, ?)', [
          event.event,
          event.userId ?? null,
          event.username === undefined ? null : recordableText(event.username),
          event.clientId === undefined ? null : recordableText(event.clientId),
          event.ip ?? null,
          event.detail === undefined ? null : JSON.stringify(event.detail),
        ])
        .options(prepared('record_auth_event'));
    },

    // returning() rather than delete()'s count: knex-pglite returns no count for deletes
    async removeBefore(before) {
      const removed = await db('auth_events').where('at', '<', before).delete().returning('id');
      return removed.length;
    },
  };
}
