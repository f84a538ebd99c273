export type AuthEventName = 'login.success' | 'login.failure' | 'login.locked' | 'login.throttled';

/** One sign-in event of the audit trail: never a password or a token. */
export interface AuthEvent {
  readonly event: AuthEventName;
  readonly userId?: string | undefined;
  readonly username?: string | undefined;
  readonly clientId?: string | undefined;
  readonly ip?: string | undefined;
  readonly detail?: Record<string, unknown> | undefined;
}

/**
 * One administration event of the audit trail (admin/commands.ts records one after every
 * change): who made it, what it was, which object it changed. Never a secret, a password, a
 * hash or key material, in any field.
 */
export interface AdminEvent {
  /** `admin.<object kind>.<what happened>`, e.g. `admin.user.deleted`. */
  readonly type: `admin.${string}`;
  /** `cli` (the CLI and the embedded admin socket), or the admin client's id (HTTP admin API). */
  readonly actor: string;
  /** The id of what changed: a client id, a user id, an API key id, a kid. */
  readonly object: string;
  readonly userId?: string | undefined;
  readonly username?: string | undefined;
  readonly clientId?: string | undefined;
  readonly detail?: Record<string, unknown> | undefined;
}

/** A stored event, sign-in or admin, as `audit list` reads it. */
export interface AuditRecord {
  /** Increasing in the order of writing; a cursor for pages of older events. */
  readonly id: string;
  readonly type: string;
  readonly at: Date;
  /** NULL for sign-in events. */
  readonly actor: string | null;
  readonly object: string | null;
  readonly userId: string | null;
  readonly username: string | null;
  readonly clientId: string | null;
  readonly ip: string | null;
  readonly detail: Record<string, unknown> | null;
}

/** Which events to read, newest first. */
export interface AuditQuery {
  /** Only events at or after this time. */
  readonly since?: Date | undefined;
  /** An exact type (`login.failure`), or a prefix ending in "." (`admin.`, `admin.user.`). */
  readonly type?: string | undefined;
  /** Only events older than the one with this id (the next page's cursor). */
  readonly before?: string | undefined;
  readonly limit: number;
}

/** The append-only audit trail. */
export interface AuditStore {
  append(event: AuthEvent): Promise<void>;
  appendAdmin(event: AdminEvent): Promise<void>;
  /** Events matching `query`, newest first. */
  list(query: AuditQuery): Promise<AuditRecord[]>;
  /** One event by id (a positive 64-bit integer, as text). */
  find(id: string): Promise<AuditRecord | undefined>;
  /** Deletes the events recorded before `before`. @returns how many */
  removeBefore(before: Date): Promise<number>;
}

/** Removes the events older than the retention (AUDIT_RETENTION_DAYS). @returns how many */
export function sweepAuditTrail(audit: AuditStore, retentionDays: number, now: Date = new Date()): Promise<number> {
  return audit.removeBefore(new Date(now.getTime() - retentionDays * 24 * 3600 * 1000));
}
