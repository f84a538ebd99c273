import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

import lockfile from 'proper-lockfile';
import { z } from 'zod';

import {
  kidMatches,
  KeyStoreError,
  KeyStoreReadOnlyError,
  privateMembersSchema,
  publicJwkSchema,
  type KeyEditor,
  type KeyStore,
  type StoredKey,
} from './key-store.js';

/** One key file: the private JWK plus its lifecycle members. */
const keyFileSchema = publicJwkSchema.extend(privateMembersSchema.shape).extend({
  state: z.enum(['next', 'current', 'retired']),
  created_at: z.iso.datetime(),
  activated_at: z.iso.datetime().optional(),
  retired_at: z.iso.datetime().optional(),
});

type KeyFile = z.infer<typeof keyFileSchema>;

const KEY_FILE = /^[A-Za-z0-9_-]+\.json$/u;

/** How long a change waits for another process's change (key generation under load takes seconds). */
const LOCK_RETRIES = { retries: 120, minTimeout: 100, maxTimeout: 500 };
/** A lock whose holder stopped refreshing it this long ago is taken over (a crashed CLI run). */
const LOCK_STALE_MS = 10_000;

function toStoredKey(content: KeyFile): StoredKey {
  const { state, created_at: createdAt, activated_at: activatedAt, retired_at: retiredAt, ...jwk } = content;
  return { jwk, state, createdAt, activatedAt, retiredAt };
}

export function keyFile(dir: string, kid: string): string {
  return path.join(dir, `${kid}.json`);
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
    if (!(await kidMatches(parsed))) throw new KeyStoreError(`${file}: kid does not match the key's RFC 7638 thumbprint`);
    keys.push(toStoredKey(parsed));
  }
  return keys;
}

/** Writes a key file atomically (a temporary file, synced, then renamed), mode 0600. */
async function writeKeyFile(dir: string, key: StoredKey): Promise<void> {
  const content: KeyFile = {
    ...key.jwk,
    state: key.state,
    created_at: key.createdAt,
    ...(key.activatedAt === undefined ? {} : { activated_at: key.activatedAt }),
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
  await fs.rename(temporary, keyFile(dir, key.jwk.kid));
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

const READ_ONLY_CODES = new Set(['EROFS', 'EACCES', 'EPERM']);

export interface FileKeyStoreOptions {
  /** How often {@link FileKeyStore.watch} looks at the directory, in ms. */
  readonly pollMs?: number;
}

/**
 * KEY_STORE=files: one JSON file per key in KEYS_DIR (mode 0600, named by `kid`). Replicas on
 * one machine (or sharing a read-write volume) coordinate through a lock file in the directory.
 * A read-only directory (a mounted secret) is read and followed, never written.
 */
export class FileKeyStore implements KeyStore {
  readonly description: string;
  readonly #pollMs: number;

  constructor(
    readonly dir: string,
    options: FileKeyStoreOptions = {},
  ) {
    this.description = `KEYS_DIR ${dir}`;
    this.#pollMs = options.pollMs ?? 2000;
  }

  list(): Promise<StoredKey[]> {
    return readKeys(this.dir);
  }

  async writable(): Promise<boolean> {
    try {
      await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
      await fs.access(this.dir, fsConstants.W_OK);
      return true;
    } catch (error) {
      if (READ_ONLY_CODES.has((error as NodeJS.ErrnoException).code ?? '')) return false;
      throw error;
    }
  }

  change<T>(change: (keys: readonly StoredKey[], editor: KeyEditor) => Promise<T>): Promise<T> {
    return this.#locked(change, LOCK_RETRIES).then((outcome) => {
      if (outcome === undefined) throw new KeyStoreError(`${this.description} stayed locked by another process`);
      return outcome.value;
    });
  }

  tryChange<T>(change: (keys: readonly StoredKey[], editor: KeyEditor) => Promise<T>): Promise<{ readonly value: T } | undefined> {
    return this.#locked(change, 0);
  }

  async #locked<T>(change: (keys: readonly StoredKey[], editor: KeyEditor) => Promise<T>, retries: typeof LOCK_RETRIES | 0): Promise<{ readonly value: T } | undefined> {
    if (!(await this.writable())) {
      throw new KeyStoreReadOnlyError(
        `${this.description} is read-only (a mounted secret?): change the keys where that directory is written; issuers follow its changes`,
      );
    }
    let release: () => Promise<void>;
    try {
      release = await lockfile.lock(this.dir, { lockfilePath: path.join(this.dir, '.lock'), stale: LOCK_STALE_MS, retries });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? '';
      if (code === 'ELOCKED' && retries === 0) return undefined;
      if (READ_ONLY_CODES.has(code)) throw new KeyStoreReadOnlyError(`${this.description} cannot be written (${(error as Error).message})`);
      throw error;
    }
    try {
      const editor: KeyEditor = {
        save: (key) => writeKeyFile(this.dir, key),
        remove: (kid) => fs.rm(keyFile(this.dir, kid), { force: true }),
      };
      return { value: await change(await readKeys(this.dir), editor) };
    } finally {
      await release();
    }
  }

  watch(listener: () => void): () => void {
    let seen: string | undefined;
    let running = false;
    const poll = async () => {
      if (running) return;
      running = true;
      try {
        const fingerprint = await keysFingerprint(this.dir);
        if (fingerprint !== seen) listener();
        seen = fingerprint;
      } catch {
        // an unreadable directory: the next poll tries again, and the listener's own read reports it
        listener();
      } finally {
        running = false;
      }
    };
    void poll();
    const timer = setInterval(() => void poll(), this.#pollMs);
    timer.unref();
    return () => clearInterval(timer);
  }
}
