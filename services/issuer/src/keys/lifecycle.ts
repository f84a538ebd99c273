import {
  activeSince,
  generateRsaKey,
  KeyChangeRefused,
  KeyNotFoundError,
  KeyRequestError,
  KeyStoreError,
  type KeyEditor,
  type KeyStore,
  type PrivateJwk,
  type StoredKey,
} from './key-store.js';

/** Where new keys come from (RSA-2048 generation; a pre-generated key where a lock must not wait for one). */
export type KeySource = () => Promise<PrivateJwk>;

/** What the issuer's rotation follows (KEY_ROTATION_INTERVAL, KEY_PUBLISH_LEAD, the longest token lifetime). */
export interface KeyPolicy {
  /** Seconds a `next` key is published before it may sign. */
  readonly publishLead: number;
  /** Seconds a key signs before it is replaced; undefined: only `sigil keys rotate` replaces it. */
  readonly rotationInterval: number | undefined;
  /** Seconds a retired key stays published: the longest lifetime of a token it signed, plus a margin. */
  readonly retention: number;
}

const seconds = (from: string, to: Date) => (to.getTime() - Date.parse(from)) / 1000;
const later = (from: string, bySeconds: number) => new Date(Date.parse(from) + bySeconds * 1000);

function singleCurrent(store: KeyStore, keys: readonly StoredKey[]): void {
  const current = keys.filter((key) => key.state === 'current');
  if (current.length !== 1) {
    throw new KeyStoreError(`${store.description} must hold exactly one key in state "current" (found ${current.length}); see keys/README.md`);
  }
}

/**
 * The keys to start with, creating the first `current` key when the store holds none. Reads
 * first and takes the store's lock only to create, so replicas starting together never wait
 * for each other, and a read-only store that holds keys is enough.
 * @throws KeyStoreError when keys exist but none is `current`, or a read-only store is empty
 */
export async function ensureSigningKey(store: KeyStore, source: KeySource = generateRsaKey, now: () => Date = () => new Date()): Promise<StoredKey[]> {
  const found = await store.list();
  if (found.length > 0) {
    if (interruptedRotation(found) && (await store.writable())) return completeRotation(store, now());
    singleCurrent(store, found);
    return found;
  }
  if (!(await store.writable())) {
    throw new KeyStoreError(`${store.description} holds no key and is read-only: create one where it is written (sigil keys generate)`);
  }
  const jwk = await source();
  return store.change(async (keys, editor) => {
    if (keys.length > 0) {
      // another replica created it meanwhile
      singleCurrent(store, keys);
      return [...keys];
    }
    const stamp = now().toISOString();
    const key: StoredKey = { jwk, state: 'current', createdAt: stamp, activatedAt: stamp, retiredAt: undefined };
    await editor.save(key);
    return [key];
  });
}

/** No current key but a `next` one: a file rotation cut short between its two writes (the old key already retired). */
function interruptedRotation(keys: readonly StoredKey[]): boolean {
  return !keys.some((key) => key.state === 'current') && keys.some((key) => key.state === 'next');
}

/** Promotes the `next` key of a rotation cut short (it was published before the rotation began), under the store's lock. */
async function completeRotation(store: KeyStore, now: Date): Promise<StoredKey[]> {
  return store.change(async (keys, editor) => {
    const next = keys.find((key) => key.state === 'next');
    if (keys.some((key) => key.state === 'current') || next === undefined) {
      singleCurrent(store, keys);
      return [...keys];
    }
    const { promoted } = await promote(editor, next, undefined, now.toISOString());
    return keys.map((key) => (key.jwk.kid === promoted.jwk.kid ? promoted : key));
  });
}

/**
 * Adds a `next` key: published at once, signing after a rotation at least one lead later. In an
 * empty store the first key is `current` instead, as the issuer would create it.
 */
export async function generateKey(store: KeyStore, source: KeySource = generateRsaKey, now: Date = new Date()): Promise<StoredKey> {
  const jwk = await source();
  return store.change(async (keys, editor) => {
    const next = keys.find((key) => key.state === 'next');
    if (next !== undefined) {
      throw new KeyStoreError(`a next key already exists (${next.jwk.kid}); rotate before generating another`);
    }
    const stamp = now.toISOString();
    const key: StoredKey =
      keys.length === 0
        ? { jwk, state: 'current', createdAt: stamp, activatedAt: stamp, retiredAt: undefined }
        : { jwk, state: 'next', createdAt: stamp, activatedAt: undefined, retiredAt: undefined };
    await editor.save(key);
    return key;
  });
}

export interface Rotation {
  /** The key that signs from now on. */
  readonly current: StoredKey;
  /** The key that signed until now. */
  readonly retired: StoredKey | undefined;
  /** The key published for the rotation after this one. */
  readonly next: StoredKey;
}

export interface RotateOptions {
  /** Seconds the `next` key must have been published (KEY_PUBLISH_LEAD). */
  readonly publishLead: number;
  /** Promote even a key published for less than the lead (or one generated on the spot). */
  readonly force?: boolean;
  readonly now?: Date;
  readonly source?: KeySource;
}

/** Retires `current` (if any) and promotes `next`: retirement first, so the store never holds two current keys. */
async function promote(editor: KeyEditor, next: StoredKey, current: StoredKey | undefined, stamp: string): Promise<{ promoted: StoredKey; retired: StoredKey | undefined }> {
  const retired = current === undefined ? undefined : { ...current, state: 'retired' as const, retiredAt: stamp };
  if (retired !== undefined) await editor.save(retired);
  const promoted: StoredKey = { ...next, state: 'current', activatedAt: stamp, retiredAt: undefined };
  await editor.save(promoted);
  return { promoted, retired };
}

/**
 * `sigil keys rotate`: `next` becomes `current`, `current` becomes `retired`, and a new `next` is
 * published for the rotation after. A `next` key published for less than the lead is not
 * promoted (verifiers may not have fetched it yet) unless `force`; when there is no `next` key
 * one is published and the rotation refused until it has been, unless `force`.
 * @throws KeyChangeRefused when the rotation must wait (with the time left); what it published stays
 */
export async function rotateKeys(store: KeyStore, options: RotateOptions): Promise<Rotation> {
  const now = options.now ?? new Date();
  const stamp = now.toISOString();
  const source = options.source ?? generateRsaKey;
  // generated before the lock: a file rotation's writes then follow one another closely, so a
  // replica polling the directory never loads the promoted key without the new next one
  const fresh = [await source(), await source()] as const;
  const outcome = await store.change(async (keys, editor): Promise<Rotation | string> => {
    let next = keys.find((key) => key.state === 'next');
    if (next === undefined) {
      next = { jwk: fresh[0], state: 'next', createdAt: stamp, activatedAt: undefined, retiredAt: undefined };
      if (options.force !== true && options.publishLead > 0) {
        await editor.save(next);
        return (
          `no next key was published: published ${next.jwk.kid} now, which may sign from ${later(stamp, options.publishLead).toISOString()} ` +
          `(KEY_PUBLISH_LEAD ${options.publishLead} s); run "sigil keys rotate" again then, or now with --force`
        );
      }
    } else if (options.force !== true && seconds(next.createdAt, now) < options.publishLead) {
      const left = Math.ceil(options.publishLead - seconds(next.createdAt, now));
      return (
        `next key ${next.jwk.kid} has been published for ${Math.floor(seconds(next.createdAt, now))} s of the ${options.publishLead} s ` +
        `KEY_PUBLISH_LEAD: ${left} s left (it may sign from ${later(next.createdAt, options.publishLead).toISOString()}); ` +
        'verifiers may not have fetched it yet: run "sigil keys rotate" again then, or now with --force'
      );
    }
    const { promoted, retired } = await promote(editor, next, keys.find((key) => key.state === 'current'), stamp);
    const following: StoredKey = { jwk: fresh[1], state: 'next', createdAt: stamp, activatedAt: undefined, retiredAt: undefined };
    await editor.save(following);
    return { current: promoted, retired, next: following };
  });
  if (typeof outcome === 'string') throw new KeyChangeRefused(outcome);
  return outcome;
}

/**
 * Retires a `next` key (it never signed) or confirms a retired one. The `current` key can
 * only be retired by a rotation, so that something always signs.
 */
export async function retireKey(store: KeyStore, kid: string, now: Date = new Date()): Promise<StoredKey> {
  return store.change(async (keys, editor) => {
    const key = keys.find((candidate) => candidate.jwk.kid === kid);
    if (key === undefined) throw new KeyNotFoundError(`no key with kid ${kid} in ${store.description}`);
    if (key.state === 'current') {
      throw new KeyRequestError(`${kid} is the current signing key; run "sigil keys rotate" to replace it first`);
    }
    if (key.state === 'retired') return key;
    const retired: StoredKey = { ...key, state: 'retired', retiredAt: now.toISOString() };
    await editor.save(retired);
    return retired;
  });
}

/** One step of the issuer's own key maintenance. */
export type KeyStep =
  | { readonly step: 'publish'; readonly kid?: string }
  | { readonly step: 'promote'; readonly kid: string; readonly retires: string | undefined }
  | { readonly step: 'remove'; readonly kid: string };

/**
 * What is due now, from the key set alone, so that every replica decides the same and a replica
 * that was down catches up without doubling a step: retired keys past retention are removed;
 * with a rotation interval, a `next` key is published one lead before the current key's
 * interval ends and promoted once both the interval and its lead have passed (never earlier,
 * however late the replica is). A store left without a current key (a file rotation cut
 * short) gets its `next` key promoted.
 */
export function dueSteps(keys: readonly StoredKey[], policy: KeyPolicy, now: Date): KeyStep[] {
  const steps: KeyStep[] = keys
    .filter((key) => key.state === 'retired' && key.retiredAt !== undefined && seconds(key.retiredAt, now) >= policy.retention)
    .map((key) => ({ step: 'remove', kid: key.jwk.kid }));
  const current = keys.find((key) => key.state === 'current');
  const next = keys.find((key) => key.state === 'next');
  if (current === undefined) {
    if (next !== undefined) steps.push({ step: 'promote', kid: next.jwk.kid, retires: undefined });
    return steps;
  }
  const interval = policy.rotationInterval;
  if (interval === undefined) return steps;
  const age = seconds(activeSince(current), now);
  if (next === undefined) {
    if (age >= interval - policy.publishLead) steps.push({ step: 'publish' });
  } else if (age >= interval && seconds(next.createdAt, now) >= policy.publishLead) {
    steps.push({ step: 'promote', kid: next.jwk.kid, retires: current.jwk.kid });
  }
  return steps;
}

/**
 * When the current key will be replaced under `policy`: its interval's end, or later when the
 * `next` key (published now at the latest) still needs its lead. Undefined without an interval.
 */
export function nextRotationAt(keys: readonly StoredKey[], policy: KeyPolicy, now: Date): Date | undefined {
  const current = keys.find((key) => key.state === 'current');
  if (policy.rotationInterval === undefined || current === undefined) return undefined;
  const due = later(activeSince(current), policy.rotationInterval).getTime();
  const next = keys.find((key) => key.state === 'next');
  const publishedAt = next === undefined ? Math.max(now.getTime(), due - policy.publishLead * 1000) : Date.parse(next.createdAt);
  return new Date(Math.max(due, publishedAt + policy.publishLead * 1000));
}

/**
 * Applies what {@link dueSteps} finds due in `keys` (the store's keys under its lock). A
 * publication uses `spare`, generated beforehand so that the lock never waits for a key.
 * @returns the steps taken
 */
export async function applyDueSteps(keys: readonly StoredKey[], editor: KeyEditor, policy: KeyPolicy, now: Date, spare: PrivateJwk | undefined): Promise<KeyStep[]> {
  const taken: KeyStep[] = [];
  const stamp = now.toISOString();
  for (const due of dueSteps(keys, policy, now)) {
    if (due.step === 'remove') {
      await editor.remove(due.kid);
    } else if (due.step === 'publish') {
      if (spare === undefined) continue;
      await editor.save({ jwk: spare, state: 'next', createdAt: stamp, activatedAt: undefined, retiredAt: undefined });
      taken.push({ step: 'publish', kid: spare.kid });
      continue;
    } else {
      const next = keys.find((key) => key.jwk.kid === due.kid);
      if (next === undefined) continue;
      await promote(editor, next, keys.find((key) => key.state === 'current'), stamp);
    }
    taken.push(due);
  }
  return taken;
}

/** The longest `max-age` a JWKS answer carries, in seconds, whatever the lead. */
const JWKS_MAX_AGE_CAP = 900;

/**
 * `Cache-Control: max-age` of the JWKS: at most half the lead, so that a verifier that honours it
 * fetches the keys at least twice while a `next` key waits to sign, and at most 15 minutes.
 */
export function jwksMaxAge(publishLead: number): number {
  return Math.min(Math.floor(publishLead / 2), JWKS_MAX_AGE_CAP);
}
