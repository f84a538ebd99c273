import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * @example
 * ```ts
 * // every instance of the service shares the secret, so each accepts the others' nonces
 * createGuard({ issuer, audience, dpop: { nonces: { secret: process.env.DPOP_NONCE_SECRET!, lifetimeSeconds: 120 } } });
 * ```
 */
export interface DpopNonceOptions {
  /**
   * Key of the nonces (at least 32 bytes). Default: random, made at start, so that only this
   * process accepts its nonces; give every instance of a service the same secret.
   */
  readonly secret?: string | Uint8Array;
  /** A nonce is the current one for this long, and is accepted for as long again. Default 300. */
  readonly lifetimeSeconds?: number;
  /** The clock in milliseconds, for tests. */
  readonly now?: () => number;
}

/**
 * Server-provided nonces for DPoP proofs (RFC 9449 §9), with no state: a nonce is the HMAC of
 * the current time step under a secret, so any instance holding the secret can tell one it
 * issued. The current and the previous steps' nonces are accepted: a nonce handed out is
 * good for between one and two lifetimes, and a proof carrying it cannot have been made
 * before it was issued, which bounds a captured proof's use however the client's clock runs.
 *
 * @example
 * ```ts
 * const nonces = new DpopNonces({ lifetimeSeconds: 60 });
 * res.setHeader('DPoP-Nonce', nonces.current());
 * nonces.accepts(proofPayload.nonce); // true within 60 to 120 s
 * ```
 */
export class DpopNonces {
  readonly lifetimeSeconds: number;
  readonly #secret: Buffer;
  readonly #now: () => number;
  #cached: { readonly step: number; readonly nonce: string } | undefined;

  constructor(options: DpopNonceOptions = {}) {
    this.lifetimeSeconds = options.lifetimeSeconds ?? 300;
    if (!Number.isInteger(this.lifetimeSeconds) || this.lifetimeSeconds < 1) throw new TypeError('dpop.nonces.lifetimeSeconds must be a whole number of at least 1');
    this.#secret = options.secret === undefined ? randomBytes(32) : Buffer.from(options.secret);
    if (this.#secret.length < 32) throw new TypeError('dpop.nonces.secret must be at least 32 bytes');
    this.#now = options.now ?? Date.now;
  }

  /** The nonce to hand out now (the `DPoP-Nonce` header). */
  current(): string {
    const step = this.#step();
    if (this.#cached?.step !== step) this.#cached = { step, nonce: this.#nonce(step) };
    return this.#cached.nonce;
  }

  /** Whether `nonce` is the current step's or the previous one's. */
  accepts(nonce: unknown): boolean {
    if (typeof nonce !== 'string') return false;
    const step = this.#step();
    const presented = Buffer.from(nonce);
    // both compared, in constant time, whatever the first gives
    const current = this.#matches(presented, this.current());
    const previous = this.#matches(presented, this.#nonce(step - 1));
    return current || previous;
  }

  #step(): number {
    return Math.floor(this.#now() / 1000 / this.lifetimeSeconds);
  }

  #nonce(step: number): string {
    const counter = Buffer.alloc(8);
    counter.writeBigInt64BE(BigInt(step));
    return createHmac('sha256', this.#secret).update(counter).digest('base64url');
  }

  #matches(presented: Buffer, expected: string): boolean {
    const wanted = Buffer.from(expected);
    return presented.length === wanted.length && timingSafeEqual(presented, wanted);
  }
}
