import type { Knex } from 'knex';

export type AuthEventName = 'login.success' | 'login.failure' | 'login.locked' | 'login.throttled';

export interface AuthEvent {
  readonly event: AuthEventName;
  readonly userId?: string | undefined;
  readonly username?: string | undefined;
  readonly clientId?: string | undefined;
  readonly ip?: string | undefined;
  readonly detail?: Record<string, unknown> | undefined;
}

/** Appends one sign-in event to the audit trail (never a password or a token). */
export async function recordAuthEvent(db: Knex, event: AuthEvent): Promise<void> {
  await db('auth_events').insert({
    event: event.event,
    user_id: event.userId ?? null,
    username: event.username ?? null,
    client_id: event.clientId ?? null,
    ip: event.ip ?? null,
    detail: event.detail === undefined ? null : JSON.stringify(event.detail),
  });
}
