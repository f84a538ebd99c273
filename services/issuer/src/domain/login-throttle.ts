/**
 * Brute-force protection for password sign-in (RFC 9700 §2.4, ASVS 6.3), kept in the
 * database so every replica enforces the same counters. Failures are counted in a 15-minute
 * window under three keys:
 *
 * - account + IP: from the 5th failure, a lock of 30 s that doubles with each further
 *   failure, up to 15 minutes. This is what an attacker at one address meets.
 * - account, from any address: from the 20th failure, a lock of 1 minute, doubling, up to 15
 *   minutes. Reaching it from one address takes longer than the window, so one address can
 *   never lock a user out; many addresses can only delay sign-in by minutes.
 * - IP, across accounts: from the 100th failure, a 15-minute lock (credential stuffing).
 *
 * A success clears the account's counters. Usernames are counted whether or not they exist.
 */
export const THROTTLE_POLICY = {
  windowSeconds: 15 * 60,
  maxLockSeconds: 15 * 60,
  pair: { threshold: 5, baseLockSeconds: 30 },
  account: { threshold: 20, baseLockSeconds: 60 },
  ip: { threshold: 100, baseLockSeconds: 15 * 60 },
} as const;

export interface LoginAttempt {
  readonly username: string;
  readonly ip: string;
}

export interface ThrottleDecision {
  readonly allowed: boolean;
  /** Seconds until the earliest lock on this attempt ends (when not allowed). */
  readonly retryAfterSeconds: number;
  /** Whether the account has failures counted (alone or from this address): a success clears them. */
  readonly accountCounted: boolean;
}

export type ThrottleRule = { readonly threshold: number; readonly baseLockSeconds: number };

function keysOf({ username, ip }: LoginAttempt): { key: string; rule: ThrottleRule }[] {
  const account = username.trim().toLowerCase();
  return [
    { key: `pair:${account}|${ip}`, rule: THROTTLE_POLICY.pair },
    { key: `account:${account}`, rule: THROTTLE_POLICY.account },
    { key: `ip:${ip}`, rule: THROTTLE_POLICY.ip },
  ];
}

/** One counter of failed attempts. */
export interface ThrottleCounter {
  readonly key: string;
  readonly lockedUntil: Date | null;
}

/** Where the counters live: shared by every replica and worker. */
export interface ThrottleStore {
  /** The counters that exist among `keys`. */
  read(keys: readonly string[]): Promise<ThrottleCounter[]>;
  /**
   * Counts one failure under `key` atomically (a counter whose window started before
   * `windowStart` starts again at 1). @returns the failures now counted in the window
   */
  countFailure(key: string, now: Date, windowStart: Date): Promise<number>;
  lock(key: string, until: Date): Promise<void>;
  clear(keys: readonly string[]): Promise<void>;
  /** Removes counters not updated since `idleSince` whose lock (if any) ended before `now`. */
  sweep(idleSince: Date, now: Date): Promise<void>;
}

/** Whether an attempt may be checked at all, before any password work is done. */
export async function checkLoginAllowed(throttle: ThrottleStore, attempt: LoginAttempt, now: Date = new Date()): Promise<ThrottleDecision> {
  const [pair, account, ip] = keysOf(attempt).map(({ key }) => key);
  const counters = await throttle.read([pair ?? '', account ?? '', ip ?? '']);
  const accountCounted = counters.some((counter) => counter.key === pair || counter.key === account);
  const locks = counters.flatMap((counter) => (counter.lockedUntil === null ? [] : [counter.lockedUntil.getTime()])).filter((until) => until > now.getTime());
  if (locks.length === 0) return { allowed: true, retryAfterSeconds: 0, accountCounted };
  return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((Math.max(...locks) - now.getTime()) / 1000)), accountCounted };
}

/** The lock a rule sets once `failures` reach its threshold: doubling from its base, up to the maximum. */
export function lockSeconds(rule: ThrottleRule, failures: number): number {
  return Math.min(rule.baseLockSeconds * 2 ** (failures - rule.threshold), THROTTLE_POLICY.maxLockSeconds);
}

/**
 * Counts a failed attempt under each key (atomic: replicas never lose a count) and sets locks
 * where a threshold is crossed.
 * @returns the keys that are now locked
 */
export async function recordLoginFailure(throttle: ThrottleStore, attempt: LoginAttempt, now: Date = new Date()): Promise<string[]> {
  const windowStart = new Date(now.getTime() - THROTTLE_POLICY.windowSeconds * 1000);
  const locked: string[] = [];
  for (const { key, rule } of keysOf(attempt)) {
    const failures = await throttle.countFailure(key, now, windowStart);
    if (failures >= rule.threshold) {
      await throttle.lock(key, new Date(now.getTime() + lockSeconds(rule, failures) * 1000));
      locked.push(key);
    }
  }
  return locked;
}

/** A successful sign-in clears the account's counters (the IP counter keeps counting). */
export async function recordLoginSuccess(throttle: ThrottleStore, attempt: LoginAttempt): Promise<void> {
  const [pair, account] = keysOf(attempt);
  await throttle.clear([pair?.key ?? '', account?.key ?? '']);
}

/** Removes counters idle for longer than the window and unlocked. */
export async function sweepLoginThrottle(throttle: ThrottleStore, now: Date = new Date()): Promise<void> {
  await throttle.sweep(new Date(now.getTime() - THROTTLE_POLICY.windowSeconds * 1000), now);
}
