import type { AuthEvent } from './audit.js';

/**
 * Attempts one account + address pair may have in flight at once: a few (a double submit, a
 * retry), well under the pair's lock threshold of 5, so that one address gets at most this many
 * argon2id verifications for one account per burst.
 */
export const PAIR_IN_FLIGHT = 3;

/**
 * Brute-force protection for password sign-in (RFC 9700 §2.4, ASVS 6.3), kept in the
 * database so every replica and worker enforces the same counters. Every attempt is first
 * RESERVED, in one atomic statement, under three keys, and the reservation decides before
 * any password work:
 *
 * - account + IP: from the 5th failure in 15 minutes, a lock of 30 s that doubles with each
 *   further failure, up to 15 minutes. This is what an attacker at one address meets.
 * - account, from any address: counts the DISTINCT addresses that failed in 15 minutes; from
 *   the 20th, a lock of 1 minute, doubling with each further address, up to 15 minutes. One
 *   address (or a few) can never lock a user out; it takes 20 of them.
 * - IP, across accounts: from the 100th failure in 15 minutes, a 15-minute lock (credential
 *   stuffing).
 *
 * At most `inFlight.pair` attempts per account + address, `inFlight.account` per account and
 * `inFlight.ip` per address are in flight (reserved, not settled) at once. The excess is refused
 * at once, before any password work, and counts as nothing: it tried no password, so it is no
 * guess (of N guesses sent together from one address, at most `inFlight.pair` are verified at
 * once; the pair locks after `pair.threshold` verified failures, as if they came one by one). The keys
 * are decided in the order pair, IP, account, and a key refused (busy or locked) makes the later
 * ones take no slot: one address flooding one account never holds the account's slots that other
 * addresses need. A reservation a crashed process never settled stops counting after
 * `inFlight.expirySeconds`. A failure is counted when it is settled; a success
 * clears the account's counters (the IP counter keeps counting). Usernames are counted whether
 * or not they exist.
 */
export const THROTTLE_POLICY = {
  windowSeconds: 15 * 60,
  maxLockSeconds: 15 * 60,
  pair: { threshold: 5, baseLockSeconds: 30 },
  account: { threshold: 20, baseLockSeconds: 60 },
  ip: { threshold: 100, baseLockSeconds: 15 * 60 },
  inFlight: { pair: PAIR_IN_FLIGHT, account: 16, ip: 32, expirySeconds: 30 },
  /** Retry-After of an attempt refused because too many were in flight. */
  busyRetryAfterSeconds: 1,
  /** The account's row keeps at most this many addresses (beyond the threshold, more change nothing). */
  addressesKept: 64,
} as const;

export interface LoginAttempt {
  readonly username: string;
  readonly ip: string;
}

export type ThrottleKind = 'account' | 'ip' | 'pair';

/** The three keys of an attempt, and its address (the account's row keeps it). */
export interface ThrottleKeys {
  readonly account: string;
  readonly ip: string;
  readonly pair: string;
  readonly address: string;
}

export type ThrottleRule = { readonly threshold: number; readonly baseLockSeconds: number };

/** How a failure is counted under each key. */
export interface FailureRules {
  readonly rules: Readonly<Record<ThrottleKind, ThrottleRule & { readonly maxLockSeconds: number }>>;
  readonly windowStart: Date;
  readonly addressesKept: number;
}

/** What a reservation decided for one key: a slot taken, no slot free, locked, or no slot taken because an earlier key refused. */
export interface KeyReservation {
  readonly kind: ThrottleKind;
  readonly decision: 'reserved' | 'busy' | 'locked' | 'skipped';
  readonly lockedUntil: Date | null;
}

/** One key after a counted failure: whether this failure set (or extended) its lock. */
export interface CountedFailure {
  readonly kind: ThrottleKind;
  readonly failures: number;
  readonly locking: boolean;
  readonly lockedUntil: Date | null;
}

/**
 * Where the counters live: shared by every replica and worker. Each method is one statement
 * that touches the rows in the same order (account, ip, pair), so concurrent ones never
 * deadlock.
 */
export interface ThrottleStore {
  /**
   * Takes, in one statement, a slot for one more attempt in flight under each key in the order
   * pair, IP, account (in-flight counts whose last reservation is older than `staleBefore` count
   * as none), unless the key is locked, already has `limits[kind]` in flight, or an earlier key
   * refused (`skipped`: no slot taken; its lock is still reported).
   */
  reserve(keys: ThrottleKeys, limits: Readonly<Record<ThrottleKind, number>>, now: Date, staleBefore: Date): Promise<KeyReservation[]>;
  /**
   * Counts one failure under every key (the account's row counts distinct addresses) and gives
   * back the slots `held`. The settling methods record `recorded` (the attempt's event) in the
   * audit trail by the same statement: the counters and the event are written together or not at
   * all (a required argument, so that no store forgets it; undefined: no event).
   */
  countFailure(keys: ThrottleKeys, held: readonly ThrottleKind[], rules: FailureRules, now: Date, recorded: AuthEvent | undefined): Promise<CountedFailure[]>;
  /** After a success: clears the account's counters (account + IP, and account) and gives back the slots `held`. */
  clearAccount(keys: ThrottleKeys, held: readonly ThrottleKind[], now: Date, recorded: AuthEvent | undefined): Promise<void>;
  /** Gives back the slots `held`, counting nothing. */
  release(keys: ThrottleKeys, held: readonly ThrottleKind[], recorded: AuthEvent | undefined): Promise<void>;
  /** How many keys of each kind are locked at `now` (the metrics' gauge; read when scraped). */
  countLocked(now: Date): Promise<Record<ThrottleKind, number>>;
  /** Removes counters not updated since `idleSince` whose lock (if any) ended before `now`. */
  sweep(idleSince: Date, now: Date): Promise<void>;
}

/** A reserved attempt: settle it exactly once with {@link settleLoginAttempt}. */
export interface AttemptReservation {
  readonly keys: ThrottleKeys;
  /** `locked` or `busy`: refused before any password work, nothing counted (settle it `released`). */
  readonly decision: 'allowed' | 'busy' | 'locked';
  /** Seconds until the latest lock on this attempt ends (when locked). */
  readonly retryAfterSeconds: number;
  /** The keys whose slot this attempt holds. */
  readonly held: readonly ThrottleKind[];
}

/**
 * Longer usernames and addresses share the key of their start: no username is longer than 100
 * characters and no address than 45, and a key must fit in a PostgreSQL index entry.
 */
const USERNAME_KEPT = 101;
const ADDRESS_KEPT = 64;

export function throttleKeys({ username, ip }: LoginAttempt): ThrottleKeys {
  const account = username.trim().toLowerCase().slice(0, USERNAME_KEPT);
  const address = ip.slice(0, ADDRESS_KEPT);
  return { account: `account:${account}`, ip: `ip:${address}`, pair: `pair:${account}|${address}`, address };
}

const seconds = (from: Date, until: Date) => Math.max(1, Math.ceil((until.getTime() - from.getTime()) / 1000));

/** Reserves an attempt before any password work; the answer decides whether it may go on. */
export async function reserveLoginAttempt(throttle: ThrottleStore, attempt: LoginAttempt, now: Date = new Date()): Promise<AttemptReservation> {
  const keys = throttleKeys(attempt);
  const { pair, account, ip, expirySeconds } = THROTTLE_POLICY.inFlight;
  const staleBefore = new Date(now.getTime() - expirySeconds * 1000);
  const reserved = await throttle.reserve(keys, { pair, account, ip }, now, staleBefore);
  const held = reserved.filter((key) => key.decision === 'reserved').map((key) => key.kind);
  const locks = reserved.flatMap((key) => (key.decision === 'locked' && key.lockedUntil !== null ? [key.lockedUntil] : []));
  if (locks.length > 0) {
    const latest = new Date(Math.max(...locks.map((until) => until.getTime())));
    return { keys, decision: 'locked', retryAfterSeconds: seconds(now, latest), held };
  }
  const busy = reserved.some((key) => key.decision === 'busy');
  return { keys, decision: busy ? 'busy' : 'allowed', retryAfterSeconds: busy ? THROTTLE_POLICY.busyRetryAfterSeconds : 0, held };
}

/** The lock a rule sets once `failures` reach its threshold: doubling from its base, up to the maximum. */
export function lockSeconds(rule: ThrottleRule, failures: number): number {
  return Math.min(rule.baseLockSeconds * 2 ** (failures - rule.threshold), THROTTLE_POLICY.maxLockSeconds);
}

export type AttemptOutcome = 'failure' | 'success' | 'released';

/** What settling decided: the keys a failure locked, and the latest of those locks. */
export interface Settled {
  readonly locked: ThrottleKind[];
  readonly retryAfterSeconds: number;
}

/** When a settlement happens (default: now), and the attempt's audit event, written with it. */
export interface SettleOptions {
  readonly now?: Date;
  readonly recorded?: AuthEvent;
}

/**
 * Settles a reservation: a failure (a wrong password, an unknown or disabled user) is counted
 * under each key and may lock them; a success clears the account's counters; `released`
 * (refused by a lock or as busy, or no password work was done) only gives the slots back.
 * `recorded` is written to the audit trail by the same statement.
 */
export async function settleLoginAttempt(throttle: ThrottleStore, reservation: AttemptReservation, outcome: AttemptOutcome, options: SettleOptions = {}): Promise<Settled> {
  const { now = new Date(), recorded } = options;
  const { keys, held } = reservation;
  if (outcome === 'success') {
    await throttle.clearAccount(keys, held, now, recorded);
    return { locked: [], retryAfterSeconds: 0 };
  }
  if (outcome === 'released') {
    if (held.length > 0 || recorded !== undefined) await throttle.release(keys, held, recorded);
    return { locked: [], retryAfterSeconds: 0 };
  }
  const { maxLockSeconds, windowSeconds, addressesKept } = THROTTLE_POLICY;
  const rules = {
    account: { ...THROTTLE_POLICY.account, maxLockSeconds },
    ip: { ...THROTTLE_POLICY.ip, maxLockSeconds },
    pair: { ...THROTTLE_POLICY.pair, maxLockSeconds },
  };
  const counted = await throttle.countFailure(keys, held, { rules, windowStart: new Date(now.getTime() - windowSeconds * 1000), addressesKept }, now, recorded);
  const locking = counted.filter((key) => key.locking && key.lockedUntil !== null);
  const latest = Math.max(now.getTime(), ...locking.map((key) => key.lockedUntil?.getTime() ?? 0));
  return { locked: locking.map((key) => key.kind), retryAfterSeconds: locking.length === 0 ? 0 : seconds(now, new Date(latest)) };
}

/** Removes counters idle for longer than the window and unlocked. */
export async function sweepLoginThrottle(throttle: ThrottleStore, now: Date = new Date()): Promise<void> {
  await throttle.sweep(new Date(now.getTime() - THROTTLE_POLICY.windowSeconds * 1000), now);
}
