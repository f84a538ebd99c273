import type { Knex } from 'knex';

import { recordAuthEvent } from './audit.js';
import { checkLoginAllowed, recordLoginFailure, recordLoginSuccess } from './login-throttle.js';
import type { PasswordHasher } from './passwords.js';
import { findLoginCandidate, updatePasswordHash, usernameSchema, type UserRecord } from './users.js';

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
export async function signIn(db: Knex, hasher: PasswordHasher, attempt: SignInAttempt): Promise<SignInResult> {
  const username = attempt.username.trim();
  const audit = { username: username.slice(0, 100), clientId: attempt.clientId, ip: attempt.ip };
  const throttle = { username, ip: attempt.ip };

  const decision = await checkLoginAllowed(db, throttle);
  if (!decision.allowed) {
    await recordAuthEvent(db, { ...audit, event: 'login.throttled', detail: { retry_after: decision.retryAfterSeconds } });
    return { outcome: 'throttled', retryAfterSeconds: decision.retryAfterSeconds };
  }

  const candidate = usernameSchema.safeParse(username).success ? await findLoginCandidate(db, username) : undefined;
  const check = await hasher.verify(candidate?.passwordHash, attempt.password);
  if (candidate === undefined || !check.valid || candidate.disabled) {
    const locked = await recordLoginFailure(db, throttle);
    await recordAuthEvent(db, { ...audit, event: 'login.failure', userId: candidate?.id });
    if (locked.length > 0) {
      await recordAuthEvent(db, { ...audit, event: 'login.locked', userId: candidate?.id, detail: { keys: locked.map((key) => key.split(':')[0]) } });
    }
    return { outcome: 'invalid' };
  }

  // the account's counters, if it has any (most sign-ins follow no failure: no write then)
  if (decision.accountCounted) await recordLoginSuccess(db, throttle);
  if (check.needsRehash) await updatePasswordHash(db, candidate.id, await hasher.hash(attempt.password));
  await recordAuthEvent(db, { ...audit, event: 'login.success', userId: candidate.id });
  const { passwordHash: _hash, ...user } = candidate;
  return { outcome: 'success', user };
}
