import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';

import argon2 from 'argon2';
import pLimit, { type LimitFunction } from 'p-limit';

/** argon2id cost parameters (OWASP Password Storage Cheat Sheet minimum: 19 MiB, t=2, p=1). */
export interface Argon2Parameters {
  readonly memoryKib: number;
  readonly timeCost: number;
  readonly parallelism: number;
}

export const OWASP_ARGON2: Argon2Parameters = { memoryKib: 19_456, timeCost: 2, parallelism: 1 };

/** Length limits, checked before any hashing (docs/security.md#secrets-at-rest, K1). */
export const PASSWORD_MIN_LENGTH = 8;
export const PASSWORD_MAX_BYTES = 1024;

export class PasswordPolicyError extends Error {
  override name = 'PasswordPolicyError';
}

/** @throws PasswordPolicyError when a new password is too short or too long */
export function checkNewPassword(password: string): void {
  if ([...password].length < PASSWORD_MIN_LENGTH) {
    throw new PasswordPolicyError(`a password must be at least ${PASSWORD_MIN_LENGTH} characters`);
  }
  if (Buffer.byteLength(password, 'utf8') > PASSWORD_MAX_BYTES) {
    throw new PasswordPolicyError(`a password must be at most ${PASSWORD_MAX_BYTES} bytes`);
  }
}

export interface PasswordCheck {
  readonly valid: boolean;
  /** The stored hash used other parameters: store a new one made with `hash`. */
  readonly needsRehash: boolean;
}

/**
 * How many argon2id computations one issuer process runs at once: its share of the cores
 * (`cores / workers`, at least 1), and, given its libuv `threads`, fewer than those (when it
 * has more than one), so that one is always free for the engine's signatures. More at once
 * would only make them take turns on the same cores, each one slower (cache and memory
 * bandwidth).
 *
 * @example
 * ```ts
 * argon2Concurrency(2, 2); // 1: two workers on two cores, one hash each at a time
 * argon2Concurrency(8, 1, 4); // 3: one process, libuv's 4 threads, one kept for signatures
 * ```
 */
export function argon2Concurrency(cores: number, workers: number, threads = Number.POSITIVE_INFINITY): number {
  return Math.max(1, Math.min(Math.floor(cores / Math.max(1, workers)), threads - 1));
}

/**
 * Verifications waiting per computation slot before the hasher refuses more (see
 * PasswordHasher). One argon2id verification at the OWASP parameters takes about 10–25 ms of a
 * core, so a full queue is well under a second of waiting: bounded, yet deep enough that a burst
 * of legitimate sign-ins (16 at once on a 2-core, 2-worker issuer) is served, not refused.
 */
export const QUEUED_PER_SLOT = 32;

/** The hasher already has as many verifications waiting as it may: refused at once, before any work. */
export class PasswordHasherBusyError extends Error {
  override name = 'PasswordHasherBusyError';
  readonly code = 'ERR_PASSWORD_HASHER_BUSY';
}

/**
 * Hashes and verifies user passwords with argon2id at explicit parameters. Verifying for an
 * unknown user runs against a dummy hash with the same parameters, so it costs the same
 * time as a known user (no enumeration by timing). At most `concurrency` computations run at
 * once; the others wait their turn in order, and at most `maxQueued` verifications wait
 * (default `concurrency × QUEUED_PER_SLOT`): beyond that, `verify` refuses at once with
 * {@link PasswordHasherBusyError}, so an overload is answered in milliseconds rather than
 * queued without limit (each waiting verification would hold a request and, running, 19 MiB).
 */
export class PasswordHasher {
  readonly #options: argon2.HashOptions & { raw?: false };
  readonly #limit: LimitFunction;
  /** Verifications admitted at once: running plus waiting. */
  readonly #admitted: number;
  #verifying = 0;
  /** The dummy hash once made (a value: a kept promise would keep the request it was made in), and while it is being made. */
  #dummy: string | undefined;
  #dummyPending: Promise<string> | undefined;
  /** Computations running now, and the time they have run, summed (ms): see {@link PasswordHasher.usage}. */
  #running = 0;
  #busyMs = 0;
  #busySince = 0;
  readonly #slots: number;

  constructor(
    readonly parameters: Argon2Parameters = OWASP_ARGON2,
    { concurrency = Number.POSITIVE_INFINITY, maxQueued = concurrency * QUEUED_PER_SLOT }: { readonly concurrency?: number; readonly maxQueued?: number } = {},
  ) {
    this.#options = {
      type: argon2.argon2id,
      memoryCost: parameters.memoryKib,
      timeCost: parameters.timeCost,
      parallelism: parameters.parallelism,
    };
    this.#limit = pLimit(concurrency);
    this.#admitted = concurrency + maxQueued;
    this.#slots = concurrency;
  }

  /**
   * How much the computations have run: `busyMs` sums the time each slot was computing
   * (wall-clock, while at least one ran it counts `running` at a time), `slots` is how many may
   * run at once (Infinity: unbounded). Utilisation over an interval: Δ`busyMs` / (`slots` × the
   * interval). Below 1 under load means requests reached argon2id slower than it could serve them.
   */
  usage(): { readonly busyMs: number; readonly running: number; readonly slots: number } {
    const now = performance.now();
    return { busyMs: this.#busyMs + this.#running * (now - this.#busySince), running: this.#running, slots: this.#slots };
  }

  /** Runs one argon2id computation in a slot, its time counted in {@link usage}. */
  #compute<T>(work: () => Promise<T>): Promise<T> {
    return this.#limit(async () => {
      this.#account(1);
      try {
        return await work();
      } finally {
        this.#account(-1);
      }
    });
  }

  #account(change: 1 | -1): void {
    const now = performance.now();
    this.#busyMs += this.#running * (now - this.#busySince);
    this.#busySince = now;
    this.#running += change;
  }

  async hash(password: string): Promise<string> {
    checkNewPassword(password);
    return this.#compute(() => argon2.hash(password, this.#options));
  }

  /**
   * Checks `password` against `storedHash`, or against a dummy hash when there is no user.
   * @throws PasswordHasherBusyError (rejects at once) when `maxQueued` verifications already wait
   */
  verify(storedHash: string | undefined, password: string): Promise<PasswordCheck> {
    // counted here, before anything is awaited (an unknown user's waits for the dummy hash first)
    if (this.#verifying >= this.#admitted) return Promise.reject(new PasswordHasherBusyError('too many password verifications are waiting'));
    this.#verifying += 1;
    return this.#verify(storedHash, password).finally(() => {
      this.#verifying -= 1;
    });
  }

  async #verify(storedHash: string | undefined, password: string): Promise<PasswordCheck> {
    const tooLong = Buffer.byteLength(password, 'utf8') > PASSWORD_MAX_BYTES;
    const hash = storedHash ?? (await this.#dummyHash());
    // an over-long password is refused, but only after the same work as any other
    const matches = await this.#compute(() => argon2.verify(hash, tooLong ? '' : password)).catch(() => false);
    const valid = matches && !tooLong && storedHash !== undefined;
    return { valid, needsRehash: valid && argon2.needsRehash(hash, this.#options) };
  }

  #dummyHash(): Promise<string> {
    if (this.#dummy !== undefined) return Promise.resolve(this.#dummy);
    this.#dummyPending ??= this.#compute(() => argon2.hash(randomBytes(32).toString('base64url'), this.#options)).then(
      (hash) => {
        this.#dummy = hash;
        this.#dummyPending = undefined;
        return hash;
      },
      (error: unknown) => {
        // not kept: the next unknown user's attempt makes it again
        this.#dummyPending = undefined;
        throw error;
      },
    );
    return this.#dummyPending;
  }
}
