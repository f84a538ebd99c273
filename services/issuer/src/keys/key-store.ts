import { generateKeyPair as generateKeyPairCb } from 'node:crypto';
import { promisify } from 'node:util';

import { calculateJwkThumbprint } from 'jose';
import { z } from 'zod';

const generateKeyPair = promisify(generateKeyPairCb);

/**
 * Lifecycle of a signing key (README, "Keys"): `next` is published but does not sign,
 * `current` signs, `retired` stays published until every token it signed has expired.
 */
export type KeyState = 'next' | 'current' | 'retired';

/** The public members of an RS256 signing key, as served at `jwks_uri`. */
export interface PublicJwk {
  readonly kty: 'RSA';
  readonly kid: string;
  readonly alg: 'RS256';
  readonly use: 'sig';
  readonly n: string;
  readonly e: string;
}

/** A complete RSA private JWK. */
export interface PrivateJwk extends PublicJwk {
  readonly d: string;
  readonly p: string;
  readonly q: string;
  readonly dp: string;
  readonly dq: string;
  readonly qi: string;
}

/** A key and its lifecycle, whichever store holds it. */
export interface StoredKey {
  readonly jwk: PrivateJwk;
  readonly state: KeyState;
  /** When the key was created, and so published: a `next` key's publication time. */
  readonly createdAt: string;
  /** When the key started signing; undefined for a `next` key (and for keys written before it was recorded). */
  readonly activatedAt: string | undefined;
  /** When the key stopped signing; set on retirement. */
  readonly retiredAt: string | undefined;
}

export class KeyStoreError extends Error {
  override name = 'KeyStoreError';
}

/** The request names a key that doesn't exist or can't take the change: the caller's input is wrong (CLI exit 2). */
export class KeyRequestError extends KeyStoreError {
  override name = 'KeyRequestError';
}

/** The request names a key the store does not hold. */
export class KeyNotFoundError extends KeyRequestError {
  override name = 'KeyNotFoundError';
}

/** The store can be read but not written (a read-only KEYS_DIR, such as a mounted secret). */
export class KeyStoreReadOnlyError extends KeyStoreError {
  override name = 'KeyStoreReadOnlyError';
}

/** A change the key set is not ready for yet (a `next` key published for less than KEY_PUBLISH_LEAD). */
export class KeyChangeRefused extends KeyStoreError {
  override name = 'KeyChangeRefused';
}

/** How a change edits the key set it was given; every edit of one change commits together (database) or in order (files). */
export interface KeyEditor {
  /** Writes `key` (a new one, or a new state of one the set holds). */
  save(key: StoredKey): Promise<void>;
  /** Deletes the key `kid`. */
  remove(kid: string): Promise<void>;
}

/**
 * Where signing keys live: files in KEYS_DIR, or the `signing_keys` table, encrypted
 * (KEY_STORE). The lifecycle (keys/lifecycle.ts) is written once over this.
 */
export interface KeyStore {
  /** What the store is, for messages: `KEYS_DIR /etc/sigil/keys`, `the database (KEY_STORE=database)`. */
  readonly description: string;
  /** Whether {@link change} can write (false for a read-only KEYS_DIR). */
  writable(): Promise<boolean>;
  /** Every key, validated and decrypted. */
  list(): Promise<StoredKey[]>;
  /**
   * Runs `change` with the key set as it is now, holding the store's lock: no other process
   * changes keys meanwhile (a lock file in KEYS_DIR, or a PostgreSQL advisory lock).
   * @throws KeyStoreReadOnlyError when the store cannot be written
   */
  change<T>(change: (keys: readonly StoredKey[], editor: KeyEditor) => Promise<T>): Promise<T>;
  /** Like {@link change}, but gives up at once (undefined) while another process holds the lock. */
  tryChange<T>(change: (keys: readonly StoredKey[], editor: KeyEditor) => Promise<T>): Promise<{ readonly value: T } | undefined>;
  /**
   * Calls `listener` whenever the keys may have changed (another replica, the CLI, an operator),
   * until the returned function is called.
   */
  watch(listener: () => void): () => void;
}

const b64u = z.string().regex(/^[A-Za-z0-9_-]+$/u);

/** The public members as stored (they are never secret). */
export const publicJwkSchema = z.object({
  kty: z.literal('RSA'),
  kid: z.string().min(1),
  alg: z.literal('RS256'),
  use: z.literal('sig'),
  n: b64u,
  e: b64u,
});

/** The private members: what the database store encrypts. */
export const privateMembersSchema = z.object({ d: b64u, p: b64u, q: b64u, dp: b64u, dq: b64u, qi: b64u });

export type PrivateMembers = z.infer<typeof privateMembersSchema>;

/** Checks that a key's `kid` is its RFC 7638 thumbprint (keys are named by it everywhere). */
export async function kidMatches(jwk: Pick<PublicJwk, 'kid' | 'n' | 'e'>): Promise<boolean> {
  return jwk.kid === (await calculateJwkThumbprint({ kty: 'RSA', n: jwk.n, e: jwk.e }));
}

/** Generates an RSA-2048 RS256 key whose `kid` is its RFC 7638 thumbprint. */
export async function generateRsaKey(): Promise<PrivateJwk> {
  const { privateKey } = await generateKeyPair('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  const { n, e, d, p, q, dp, dq, qi } = jwk;
  if (!n || !e || !d || !p || !q || !dp || !dq || !qi) throw new KeyStoreError('key generation gave an incomplete JWK');
  const kid = await calculateJwkThumbprint({ kty: 'RSA', n, e });
  return { kty: 'RSA', kid, alg: 'RS256', use: 'sig', n, e, d, p, q, dp, dq, qi };
}

export function publicJwk(jwk: PrivateJwk): PublicJwk {
  const { kty, kid, alg, use, n, e } = jwk;
  return { kty, kid, alg, use, n, e };
}

export function privateMembers(jwk: PrivateJwk): PrivateMembers {
  const { d, p, q, dp, dq, qi } = jwk;
  return { d, p, q, dp, dq, qi };
}

const STATE_ORDER: Record<KeyState, number> = { current: 0, next: 1, retired: 2 };

/**
 * The keys in the order the engine needs: the `current` key first, because among keys
 * with `alg` and `use` the first one signs (docs/engine.md#signing-key-selection); then `next`, then `retired`.
 */
export function signingOrder(keys: readonly StoredKey[]): StoredKey[] {
  return [...keys].sort((a, b) => STATE_ORDER[a.state] - STATE_ORDER[b.state] || a.createdAt.localeCompare(b.createdAt));
}

/** When `key` started signing: recorded at promotion; for keys from before that was recorded, their creation. */
export function activeSince(key: StoredKey): string {
  return key.activatedAt ?? key.createdAt;
}

/** Whether two key sets hold the same keys in the same states. */
export function sameKeySet(a: readonly StoredKey[], b: readonly StoredKey[]): boolean {
  return a.length === b.length && a.every((key) => b.some((other) => other.jwk.kid === key.jwk.kid && other.state === key.state));
}
