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

/** The append-only audit trail. */
export interface AuditStore {
  append(event: AuthEvent): Promise<void>;
  /** Deletes the events recorded before `before`. @returns how many */
  removeBefore(before: Date): Promise<number>;
}

/** Removes the events older than the retention (AUDIT_RETENTION_DAYS). @returns how many */
export function sweepAuditTrail(audit: AuditStore, retentionDays: number, now: Date = new Date()): Promise<number> {
  return audit.removeBefore(new Date(now.getTime() - retentionDays * 24 * 3600 * 1000));
}
