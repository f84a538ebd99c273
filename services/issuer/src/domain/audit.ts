import type { Knex } from 'knex';

import { prepared } from '../storage/prepared.js';

export type AuthEventName = 'login.success' | 'login.failure' | 'login.locked' | 'login.throttled';

export interface AuthEvent {
  readonly event: AuthEventName;
  readonly userId?: string | undefined;
  readonly username?: string | undefined;
  readonly clientId?: string | undefined;
  readonly ip?: string | undefined;
  readonly detail?: Record<string, unknown> | undefined;
}

/** Appends one sign-in event to the audit trail (never a password or a token); a named statement, as every sign-in writes one. */
export async function recordAuthEvent(db: Knex, event: AuthEvent): Promise<void> {
  await db
    .raw('INSERT INTO auth_events (event, user_id, username, client_id, ip, detail) VALUES (?, ?, ?, ?, ?, ?)', [
      event.event,
      event.userId ?? null,
      event.username ?? null,
      event.clientId ?? null,
      event.ip ?? null,
      event.detail === undefined ? null : JSON.stringify(event.detail),
    ])
    .options(prepared('record_auth_event'));
}
