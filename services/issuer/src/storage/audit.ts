import type { Knex } from 'knex';

import type { AuditRecord, AuditStore, AuthEvent } from '../domain/audit.js';
import { queryDirectNamed } from './direct.js';
import { isStorableKey, recordableText } from './text.js';

/** An `auth_events` row as `list` reads it (`id` as text: 64-bit). */
interface EventRow {
  id_text: string;
  at: Date;
  event: string;
  actor: string | null;
  object: string | null;
  user_id: string | null;
  username: string | null;
  client_id: string | null;
  ip: string | null;
  detail: Record<string, unknown> | string | null;
}

function toRecord(row: EventRow): AuditRecord {
  return {
    id: row.id_text,
    type: row.event,
    at: new Date(row.at),
    actor: row.actor,
    object: row.object,
    userId: row.user_id,
    username: row.username,
    clientId: row.client_id,
    ip: row.ip,
    detail: typeof row.detail === 'string' ? (JSON.parse(row.detail) as Record<string, unknown>) : row.detail,
  };
}

const text = (value: string | undefined) => (value === undefined ? null : recordableText(value));

/**
 * The insert of one sign-in event, with named placeholders (`:eventType`, `:eventUserId`…,
 * filled by {@link authEventBindings}): on its own in `append`, and as a CTE of the throttle's
 * settlement, so that an attempt's counters and its event are written by one statement.
 */
export const RECORD_AUTH_EVENT =
  'INSERT INTO auth_events (event, user_id, username, client_id, ip, detail) VALUES (:eventType, :eventUserId, :eventUsername, :eventClientId, :eventIp, :eventDetail)';

/** The values of {@link RECORD_AUTH_EVENT}'s placeholders for `event`. */
export function authEventBindings(event: AuthEvent): Record<string, string | null> {
  return {
    eventType: event.event,
    eventUserId: event.userId ?? null,
    eventUsername: text(event.username),
    eventClientId: text(event.clientId),
    eventIp: event.ip ?? null,
    eventDetail: event.detail === undefined ? null : JSON.stringify(event.detail),
  };
}

/** The `auth_events` table: sign-in events and admin events (migrations 20261129000400, 20261201004100). */
export function createAuditStore(db: Knex): AuditStore {
  return {
    // a named statement: sign-ins write one (most through the throttle's settlement instead: login-throttle.ts)
    async append(event) {
      await queryDirectNamed(db, 'record_auth_event', RECORD_AUTH_EVENT, authEventBindings(event));
    },

    async appendAdmin(event) {
      await db('auth_events').insert({
        event: event.type,
        actor: recordableText(event.actor),
        object: recordableText(event.object),
        user_id: event.userId ?? null,
        username: text(event.username),
        client_id: text(event.clientId),
        // jsonb cannot hold U+0000 either
        detail: event.detail === undefined ? null : JSON.stringify(event.detail, (_key, value: unknown) => (typeof value === 'string' ? recordableText(value) : value)),
      });
    },

    // by id, newest first: `before` (an id) pages back from a cursor
    async list({ since, type, before, limit }) {
      const query = db('auth_events')
        .select<EventRow[]>(db.raw('id::text AS id_text'), 'at', 'event', 'actor', 'object', 'user_id', 'username', 'client_id', 'ip', 'detail')
        .orderBy('id', 'desc')
        .limit(limit);
      if (since !== undefined) query.where('at', '>=', since);
      if (type !== undefined) {
        // a prefix ends in "."; compared as text, so "_" in a type is no wildcard
        if (!isStorableKey(type)) return [];
        if (type.endsWith('.')) query.whereRaw('starts_with(event, ?)', [type]);
        else query.where('event', type);
      }
      if (before !== undefined) query.where('id', '<', before);
      return (await query).map(toRecord);
    },

    async find(id) {
      const row = await db('auth_events')
        .select<EventRow[]>(db.raw('id::text AS id_text'), 'at', 'event', 'actor', 'object', 'user_id', 'username', 'client_id', 'ip', 'detail')
        .where('id', id)
        .first();
      return row === undefined ? undefined : toRecord(row);
    },

    // returning() rather than delete()'s count: knex-pglite returns no count for deletes
    async removeBefore(before) {
      const removed = await db('auth_events').where('at', '<', before).delete().returning('id');
      return removed.length;
    },
  };
}
