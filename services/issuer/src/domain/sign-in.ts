import type { AuditStore } from './audit.js';
import { reserveLoginAttempt, settleLoginAttempt, type AttemptReservation, type ThrottleStore } from './login-throttle.js';
import { PasswordHasherBusyError, type PasswordCheck, type PasswordHasher } from './passwords.js';
import { usernameSchema, type LoginCandidate, type UserRecord, type UserStore } from './users.js';

/** What sign-in reads and writes. */
export interface SignInStores {
  readonly users: UserStore;
  readonly throttle: ThrottleStore;
  readonly audit: AuditStore;
}

export interface SignInAttempt {
  readonly username: string;
  readonly password: string;
  readonly ip: string;
  readonly clientId: string | undefined;
}

/** Retry-After when the password hasher refused for overload: its queue drains in well under a second. */
export const OVERLOADED_RETRY_AFTER_SECONDS = 1;

export type SignInResult =
  | { readonly outcome: 'success'; readonly user: UserRecord }
  /** Wrong password, unknown user or disabled user: one answer for all three. */
  | { readonly outcome: 'invalid' }
  /** Locked, or too many attempts in flight for the account or address (`in_flight`: nothing was counted). */
  | { readonly outcome: 'throttled'; readonly reason: 'locked' | 'in_flight'; readonly retryAfterSeconds: number }
  /** The password hasher has as many verifications waiting as it may: refused before any work. */
  | { readonly outcome: 'unavailable'; readonly retryAfterSeconds: number };

type AuditFields = { readonly username: string; readonly clientId: string | undefined; readonly ip: string };

/**
 * An attempt the reservation refused, before any password work: it tried no password, so it
 * counts nothing, whether a lock or too many in flight refused it; its slots are given back.
 */
async function refuse({ throttle }: SignInStores, reservation: AttemptReservation, audit: AuditFields): Promise<SignInResult> {
  const reason = reservation.decision === 'locked' ? 'locked' : 'in_flight';
  await settleLoginAttempt(throttle, reservation, 'released', { recorded: { ...audit, event: 'login.throttled', detail: { reason, retry_after: reservation.retryAfterSeconds } } });
  return { outcome: 'throttled', reason, retryAfterSeconds: reservation.retryAfterSeconds };
}

/** The user, if the username could be one, and argon2id against its hash or the dummy one (same cost for unknown users). */
async function verify(users: UserStore, hasher: PasswordHasher, username: string, password: string): Promise<{ candidate: LoginCandidate | undefined; check: PasswordCheck }> {
  const candidate = usernameSchema.safeParse(username).success ? await users.findLoginCandidate(username) : undefined;
  return { candidate, check: await hasher.verify(candidate?.passwordHash, password) };
}

/**
 * Checks a username and password for the password grant and the login form: the attempt is
 * reserved first (refused while locked or when too many are in flight, before any password
 * work), then argon2id against the stored hash or a dummy one, re-hashing when the parameters
 * changed, the reservation settled, and an audit event for every outcome.
 */
export async function signIn(stores: SignInStores, hasher: PasswordHasher, attempt: SignInAttempt): Promise<SignInResult> {
  const { users, throttle, audit: trail } = stores;
  const username = attempt.username.trim();
  const audit = { username: username.slice(0, 100), clientId: attempt.clientId, ip: attempt.ip };

  const reservation = await reserveLoginAttempt(throttle, { username, ip: attempt.ip });
  if (reservation.decision !== 'allowed') return refuse(stores, reservation, audit);

  let verified: Awaited<ReturnType<typeof verify>>;
  try {
    verified = await verify(users, hasher, username, attempt.password);
  } catch (error) {
    // no verdict: the attempt counts as nothing, and its slots are given back at once
    if (!(error instanceof PasswordHasherBusyError)) {
      await settleLoginAttempt(throttle, reservation, 'released');
      throw error;
    }
    await settleLoginAttempt(throttle, reservation, 'released', { recorded: { ...audit, event: 'login.throttled', detail: { reason: 'overloaded', retry_after: OVERLOADED_RETRY_AFTER_SECONDS } } });
    return { outcome: 'unavailable', retryAfterSeconds: OVERLOADED_RETRY_AFTER_SECONDS };
  }

  // each settlement and the attempt's event are one statement
  const { candidate, check } = verified;
  if (candidate === undefined || !check.valid || candidate.disabled) {
    const { locked } = await settleLoginAttempt(throttle, reservation, 'failure', { recorded: { ...audit, event: 'login.failure', userId: candidate?.id } });
    if (locked.length > 0) await trail.append({ ...audit, event: 'login.locked', userId: candidate?.id, detail: { keys: locked } });
    return { outcome: 'invalid' };
  }

  await settleLoginAttempt(throttle, reservation, 'success', { recorded: { ...audit, event: 'login.success', userId: candidate.id } });
  if (check.needsRehash) await users.updatePasswordHash(candidate.id, await hasher.hash(attempt.password));
  const { passwordHash: _hash, ...user } = candidate;
  return { outcome: 'success', user };
}
