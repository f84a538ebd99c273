import { generateKeyPair as generateKeyPairCb, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

import { calculateJwkThumbprint } from 'jose';
import lockfile from 'proper-lockfile';
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

export interface StoredKey {
  readonly jwk: PrivateJwk;
  readonly state: KeyState;
  readonly createdAt: string;
  /** When the key stopped signing; set on retirement. */
  readonly retiredAt: string | undefined;
  readonly file: string;
}

export class KeyStoreError extends Error {
  override name = 'KeyStoreError';
}

/** The request names a key that doesn't exist or can't take the change: the caller's input is wrong. */
export class KeyRequestError extends KeyStoreError {
  override name = 'KeyRequestError';
}

const b64u = z.string().regex(/^[A-Za-z0-9_-]+$/u);

/** One key file: the private JWK plus its lifecycle members. */
const keyFileSchema = z.object({
  kty: z.literal('RSA'),
  kid: z.string().min(1),
  alg: z.literal('RS256'),
  use: z.literal('sig'),
  n: b64u,
  e: b64u,
  d: b64u,
  p: b64u,
  q: b64u,
  dp: b64u,
  dq: b64u,
  qi: b64u,
  state: z.enum(['next', 'current', 'retired']),
  created_at: z.iso.datetime(),
  retired_at: z.iso.datetime().optional(),
});

type KeyFile = z.infer<typeof keyFileSchema>;

const KEY_FILE = /^[A-Za-z0-9_-]+\.json$/u;

function toStoredKey(file: string, content: KeyFile): StoredKey {
  const { state, created_at: createdAt, retired_at: retiredAt, ...jwk } = content;
  return { jwk, state, createdAt, retiredAt, file };
}

/** Reads every key file in `dir`. A malformed or world-readable key file is an error. */
export async function readKeys(dir: string): Promise<StoredKey[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const keys: StoredKey[] = [];
  for (const name of names.filter((entry) => KEY_FILE.test(entry)).sort()) {
    const file = path.join(dir, name);
    const stat = await fs.stat(file);
    if ((stat.mode & 0o077) !== 0) {
      throw new KeyStoreError(
        `${file} is readable by other users (mode ${(stat.mode & 0o777).toString(8)}); run: chmod 600 ${file}`,
      );
    }
    let parsed: KeyFile;
    try {
      parsed = keyFileSchema.parse(JSON.parse(await fs.readFile(file, 'utf8')));
    } catch {
      throw new KeyStoreError(`${file} is not a valid Sigil key file (an RS256 private JWK with state)`);
    }
    if (parsed.kid !== (await calculateJwkThumbprint({ kty: 'RSA', n: parsed.n, e: parsed.e }))) {
      throw new KeyStoreError(`${file}: kid does not match the key's RFC 7638 thumbprint`);
    }
    keys.push(toStoredKey(file, parsed));
  }
  return keys;
}

async function writeKeyFile(dir: string, key: Omit<StoredKey, 'file'>): Promise<StoredKey> {
  const file = path.join(dir, `${key.jwk.kid}.json`);
  const content: KeyFile = {
    ...key.jwk,
    state: key.state,
    created_at: key.createdAt,
    ...(key.retiredAt === undefined ? {} : { retired_at: key.retiredAt }),
  };
  const temporary = path.join(dir, `.${key.jwk.kid}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await fs.open(temporary, 'wx', 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(content, null, 2)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(temporary, file);
  return { ...key, file };
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

/**
 * Runs `fn` while holding the key directory's lock, so that replicas sharing a
 * `KEYS_DIR` never change key states at the same time.
 */
async function withKeysLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const release = await lockfile.lock(dir, {
    lockfilePath: path.join(dir, '.lock'),
    stale: 10_000,
    retries: { retries: 20, minTimeout: 50, maxTimeout: 500 },
  });
  try {
    return await fn();
  } finally {
    await release();
  }
}

/**
 * Loads the keys, creating the first `current` key when the directory holds none.
 * @throws KeyStoreError when keys exist but none is `current`
 */
export async function ensureSigningKey(dir: string): Promise<StoredKey[]> {
  return withKeysLock(dir, async () => {
    const keys = await readKeys(dir);
    if (keys.length === 0) {
      const jwk = await generateRsaKey();
      return [await writeKeyFile(dir, { jwk, state: 'current', createdAt: new Date().toISOString(), retiredAt: undefined })];
    }
    const current = keys.filter((key) => key.state === 'current');
    if (current.length !== 1) {
      throw new KeyStoreError(
        `${dir} must hold exactly one key in state "current" (found ${current.length}); see keys/README.md`,
      );
    }
    return keys;
  });
}

/**
 * Adds a `next` key: published at once, signing after the next rotation. In an empty
 * directory the first key is `current` instead, as the issuer would create it.
 */
export async function generateKey(dir: string): Promise<StoredKey> {
  return withKeysLock(dir, async () => {
    const keys = await readKeys(dir);
    const next = keys.find((key) => key.state === 'next');
    if (next !== undefined) {
      throw new KeyStoreError(`a next key already exists (${next.jwk.kid}); rotate before generating another`);
    }
    const jwk = await generateRsaKey();
    const state = keys.length === 0 ? 'current' : 'next';
    return writeKeyFile(dir, { jwk, state, createdAt: new Date().toISOString(), retiredAt: undefined });
  });
}

export function publicJwk(jwk: PrivateJwk): PublicJwk {
  const { kty, kid, alg, use, n, e } = jwk;
  return { kty, kid, alg, use, n, e };
}

const STATE_ORDER: Record<KeyState, number> = { current: 0, next: 1, retired: 2 };

/**
 * The keys in the order the engine needs: the `current` key first, because among keys
 * with `alg` and `use` the first one signs (docs/engine.md#signing-key-selection); then `next`, then `retired`.
 */
export function signingOrder(keys: readonly StoredKey[]): StoredKey[] {
  return [...keys].sort((a, b) => STATE_ORDER[a.state] - STATE_ORDER[b.state] || a.createdAt.localeCompare(b.createdAt));
}

export interface Rotation {
  /** The key that signs from now on. */
  readonly current: StoredKey;
  /** The key that signed until now. */
  readonly retired: StoredKey | undefined;
  /** The key published for the rotation after this one. */
  readonly next: StoredKey;
}

/**
 * Rotates: `next` becomes `current` (one is generated when none exists), `current`
 * becomes `retired`, and a new `next` is generated so the following rotation's key is
 * published well before it signs. Every replica picks the change up by polling.
 */
export async function rotateKeys(dir: string, now: Date = new Date()): Promise<Rotation> {
  return withKeysLock(dir, async () => {
    const keys = await readKeys(dir);
    const stamp = now.toISOString();
    const promoted = keys.find((key) => key.state === 'next') ?? { jwk: await generateRsaKey(), createdAt: stamp };
    const previous = keys.find((key) => key.state === 'current');
    // a crash between these writes leaves no current key; running rotate again completes it
    const retired =
      previous === undefined ? undefined : await writeKeyFile(dir, { ...previous, state: 'retired', retiredAt: stamp });
    const current = await writeKeyFile(dir, { jwk: promoted.jwk, createdAt: promoted.createdAt, state: 'current', retiredAt: undefined });
    const next = await writeKeyFile(dir, { jwk: await generateRsaKey(), state: 'next', createdAt: stamp, retiredAt: undefined });
    return { current, retired, next };
  });
}

/**
 * Retires a `next` key (it never signed) or confirms a retired one. The `current` key can
 * only be retired by a rotation, so that something always signs.
 */
export async function retireKey(dir: string, kid: string, now: Date = new Date()): Promise<StoredKey> {
  return withKeysLock(dir, async () => {
    const key = (await readKeys(dir)).find((candidate) => candidate.jwk.kid === kid);
    if (key === undefined) throw new KeyRequestError(`no key with kid ${kid} in ${dir}`);
    if (key.state === 'current') {
      throw new KeyRequestError(`${kid} is the current signing key; run "sigil keys rotate" to replace it first`);
    }
    if (key.state === 'retired') return key;
    return writeKeyFile(dir, { ...key, state: 'retired', retiredAt: now.toISOString() });
  });
}

/**
 * Deletes retired keys whose every token has expired: retired for longer than
 * `retentionSeconds` (the longest token lifetime plus a margin for clock skew).
 * @returns the kids removed
 */
export async function removeExpiredKeys(dir: string, retentionSeconds: number, now: Date = new Date()): Promise<string[]> {
  const expired = (keys: StoredKey[]) =>
    keys.filter(
      (key) =>
        key.state === 'retired' &&
        key.retiredAt !== undefined &&
        Date.parse(key.retiredAt) + retentionSeconds * 1000 <= now.getTime(),
    );
  if (expired(await readKeys(dir)).length === 0) return [];
  return withKeysLock(dir, async () => {
    const removable = expired(await readKeys(dir));
    for (const key of removable) await fs.rm(key.file, { force: true });
    return removable.map((key) => key.jwk.kid);
  });
}

/**
 * A cheap fingerprint of the key files (names, sizes, modification times), to notice
 * changes without reading and parsing every file on each poll.
 */
export async function keysFingerprint(dir: string): Promise<string> {
  let names: string[];
  try {
    names = (await fs.readdir(dir)).filter((entry) => KEY_FILE.test(entry)).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw error;
  }
  const parts = await Promise.all(
    names.map(async (name) => {
      const stat = await fs.stat(path.join(dir, name)).catch(() => undefined);
      return stat === undefined ? name : `${name}:${stat.size}:${stat.mtimeMs}`;
    }),
  );
  return parts.join('|');
}
