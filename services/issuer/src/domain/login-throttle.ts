import type { Knex } from 'knex';

import { prepared } from '../storage/prepared.js';

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

type Rule = { readonly threshold: number; readonly baseLockSeconds: number };

function keysOf({ username, ip }: LoginAttempt): { key: string; rule: Rule }[] {
  const account = username.trim().toLowerCase();
  return [
    { key: `pair:${account}|${ip}`, rule: THROTTLE_POLICY.pair },
    { key: `account:${account}`, rule: THROTTLE_POLICY.account },
    { key: `ip:${ip}`, rule: THROTTLE_POLICY.ip },
  ];
}

/**
 * Whether an attempt may be checked at all, before any password work is done. One named
 * statement: it runs on every sign-in.
 */
export async function checkLoginAllowed(db: Knex, attempt: LoginAttempt, now: Date = new Date()): Promise<ThrottleDecision> {
  const [pair, account, ip] = keysOf(attempt).map(({ key }) => key);
  const { rows } = await db
    .raw<{ rows: { key: string; locked_until: Date | null }[] }>('SELECT key, locked_until FROM login_throttle WHERE key IN (?, ?, ?)', [pair ?? '', account ?? '', ip ?? ''])
    .options(prepared('login_throttle_check'));
  const accountCounted = rows.some((row) => row.key === pair || row.key === account);
  const locks = rows.flatMap((row) => (row.locked_until === null ? [] : [new Date(row.locked_until).getTime()])).filter((until) => until > now.getTime());
  if (locks.length === 0) return { allowed: true, retryAfterSeconds: 0, accountCounted };
  return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((Math.max(...locks) - now.getTime()) / 1000)), accountCounted };
}

/**
 * Counts a failed attempt under each key (an atomic upsert: replicas never lose a count) and
 * sets locks where a threshold is crossed.
 * @returns the keys that are now locked
 */
export async function recordLoginFailure(db: Knex, attempt: LoginAttempt, now: Date = new Date()): Promise<string[]> {
  const windowStart = new Date(now.getTime() - THROTTLE_POLICY.windowSeconds * 1000);
  const locked: string[] = [];
  for (const { key, rule } of keysOf(attempt)) {
    const result = await db.raw<{ rows: { failures: number }[] }>(
      `INSERT INTO login_throttle (key, failures, window_started_at, locked_until, updated_at)
       VALUES (?, 1, ?, NULL, ?)
       ON CONFLICT (key) DO UPDATE SET
         failures = CASE WHEN login_throttle.window_started_at < ? THEN 1 ELSE login_throttle.failures + 1 END,
         window_started_at = CASE WHEN login_throttle.window_started_at < ? THEN EXCLUDED.window_started_at ELSE login_throttle.window_started_at END,
         updated_at = EXCLUDED.updated_at
       RETURNING failures`,
      [key, now, now, windowStart, windowStart],
    );
    const failures = Number(result.rows[0]?.failures ?? 0);
    if (failures >= rule.threshold) {
      const seconds = Math.min(rule.baseLockSeconds * 2 ** (failures - rule.threshold), THROTTLE_POLICY.maxLockSeconds);
      await db('login_throttle').where({ key }).update({ locked_until: new Date(now.getTime() + seconds * 1000) });
      locked.push(key);
    }
  }
  return locked;
}

/** A successful sign-in clears the account's counters (the IP counter keeps counting). */
export async function recordLoginSuccess(db: Knex, attempt: LoginAttempt): Promise<void> {
  const [pair, account] = keysOf(attempt);
  await db('login_throttle').whereIn('key', [pair?.key ?? '', account?.key ?? '']).delete();
}

/** Removes counters idle for longer than the window and unlocked. */
export async function sweepLoginThrottle(db: Knex, now: Date = new Date()): Promise<void> {
  const idleSince = new Date(now.getTime() - THROTTLE_POLICY.windowSeconds * 1000);
  await db('login_throttle')
    .where('updated_at', '<', idleSince)
    .andWhere((query) => query.whereNull('locked_until').orWhere('locked_until', '<', now))
    .delete();
}
