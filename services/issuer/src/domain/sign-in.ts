import type { AuditStore } from './audit.js';
import { checkLoginAllowed, recordLoginFailure, recordLoginSuccess, type ThrottleStore } from './login-throttle.js';
import type { PasswordHasher } from './passwords.js';
import { usernameSchema, type UserRecord, type UserStore } from './users.js';

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

export type SignInResult =
  | { readonly outcome: 'success'; readonly user: UserRecord }
  /** Wrong password, unknown user or disabled user: one answer for all three. */
  | { readonly outcome: 'invalid' }
  | { readonly outcome: 'throttled'; readonly retryAfterSeconds: number };

/**
 * Checks a username and password for the password grant and the login form: throttling
 * first (no password work while locked), then argon2id against the stored hash or a dummy
 * one (same cost for unknown users), re-hashing when the parameters changed, and an audit
 * event for every outcome.
 */
export async function signIn({ users, throttle: counters, audit: trail }: SignInStores, hasher: PasswordHasher, attempt: SignInAttempt): Promise<SignInResult> {
  const username = attempt.username.trim();
  const audit = { username: username.slice(0, 100), clientId: attempt.clientId, ip: attempt.ip };
  const throttle = { username, ip: attempt.ip };

  const decision = await checkLoginAllowed(counters, throttle);
  if (!decision.allowed) {
    await trail.append({ ...audit, event: 'login.throttled', detail: { retry_after: decision.retryAfterSeconds } });
    return { outcome: 'throttled', retryAfterSeconds: decision.retryAfterSeconds };
  }

  const candidate = usernameSchema.safeParse(username).success ? await users.findLoginCandidate(username) : undefined;
  const check = await hasher.verify(candidate?.passwordHash, attempt.password);
  if (candidate === undefined || !check.valid || candidate.disabled) {
    const locked = await recordLoginFailure(counters, throttle);
    await trail.append({ ...audit, event: 'login.failure', userId: candidate?.id });
    if (locked.length > 0) {
      await trail.append({ ...audit, event: 'login.locked', userId: candidate?.id, detail: { keys: locked.map((key) => key.split(':')[0]) } });
    }
    return { outcome: 'invalid' };
  }

  // the account's counters, if it has any (most sign-ins follow no failure: no write then)
  if (decision.accountCounted) await recordLoginSuccess(counters, throttle);
  if (check.needsRehash) await users.updatePasswordHash(candidate.id, await hasher.hash(attempt.password));
  await trail.append({ ...audit, event: 'login.success', userId: candidate.id });
  const { passwordHash: _hash, ...user } = candidate;
  return { outcome: 'success', user };
}
