import type { ChangeFeed } from '../storage/changes.js';
import { SIGNING_KEYS_TABLE, type SigningKeyRow, type SigningKeyStore, type SigningKeyWriter } from '../storage/signing-keys.js';
import { KeyCipher } from './encryption.js';
import {
  kidMatches,
  KeyStoreError,
  privateMembers,
  privateMembersSchema,
  publicJwkSchema,
  type KeyEditor,
  type KeyStore,
  type StoredKey,
} from './key-store.js';

export interface DatabaseKeyStoreOptions {
  /** The change feed the issuer listens to: key changes reach this replica through it. */
  readonly changes?: ChangeFeed;
  /** How often keys are re-read while notifications arrive (a fallback), in ms. */
  readonly rereadMs?: number;
  /** How often keys are re-read while they do not, in ms. */
  readonly pollMs?: number;
}

const iso = (value: Date | null) => (value === null ? undefined : value.toISOString());

/**
 * KEY_STORE=database: keys in the `signing_keys` table, private members sealed with
 * AES-256-GCM under KEYS_ENCRYPTION_KEY and never written anywhere else. Replicas on any number
 * of machines share them through PostgreSQL alone: a change commits in one transaction under an
 * advisory lock, and its notification makes every replica reload at once.
 */
export class DatabaseKeyStore implements KeyStore {
  readonly description = 'the database key store (KEY_STORE=database)';

  constructor(
    private readonly rows: SigningKeyStore,
    private readonly cipher: KeyCipher,
    private readonly options: DatabaseKeyStoreOptions = {},
  ) {}

  async writable(): Promise<boolean> {
    return true;
  }

  async list(): Promise<StoredKey[]> {
    return Promise.all((await this.rows.list()).map((row) => this.#open(row)));
  }

  async change<T>(change: (keys: readonly StoredKey[], editor: KeyEditor) => Promise<T>): Promise<T> {
    const outcome = await this.rows.change(async (writer) => change(await this.#openAll(writer), this.#editor(writer)), true);
    if (outcome === undefined) throw new KeyStoreError('the key set lock was not granted');
    return outcome.value;
  }

  /** Like {@link change}, but gives up at once (undefined) when another replica is changing the keys. */
  async tryChange<T>(change: (keys: readonly StoredKey[], editor: KeyEditor) => Promise<T>): Promise<{ readonly value: T } | undefined> {
    return this.rows.change(async (writer) => change(await this.#openAll(writer), this.#editor(writer)), false);
  }

  /**
   * Seals every key that is not sealed under the first KEYS_ENCRYPTION_KEY with it, in one
   * transaction. @returns how many were re-sealed, of how many
   */
  async reencrypt(): Promise<{ reencrypted: number; total: number }> {
    const outcome = await this.rows.change(async (writer) => {
      const rows = await writer.list();
      let reencrypted = 0;
      for (const row of rows) {
        if (KeyCipher.sealedWith(row.sealedPrivate) === this.cipher.primaryId) continue;
        await writer.save(this.#seal(await this.#open(row)));
        reencrypted += 1;
      }
      return { reencrypted, total: rows.length };
    }, true);
    if (outcome === undefined) throw new KeyStoreError('the key set lock was not granted');
    return outcome.value;
  }

  /** How many keys are sealed under each encryption key id (for `sigil doctor` and `keys list`). */
  async sealedWith(): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (const row of await this.rows.list()) {
      const id = KeyCipher.sealedWith(row.sealedPrivate) ?? 'unknown';
      counts[id] = (counts[id] ?? 0) + 1;
    }
    return counts;
  }

  watch(listener: () => void): () => void {
    const { changes } = this.options;
    const rereadMs = this.options.rereadMs ?? 30_000;
    const pollMs = this.options.pollMs ?? 2000;
    // a changed key, or EVERYTHING (notifications were missed): re-read either way
    changes?.subscribe(SIGNING_KEYS_TABLE, () => listener());
    // a fallback: every poll while notifications are not known to arrive, every reread otherwise
    let sinceRead = 0;
    const timer = setInterval(() => {
      sinceRead += pollMs;
      if (changes?.live === true && sinceRead < rereadMs) return;
      sinceRead = 0;
      listener();
    }, pollMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  #openAll(writer: SigningKeyWriter): Promise<StoredKey[]> {
    return writer.list().then((rows) => Promise.all(rows.map((row) => this.#open(row))));
  }

  #editor(writer: SigningKeyWriter): KeyEditor {
    return {
      save: (key) => writer.save(this.#seal(key)),
      remove: (kid) => writer.remove(kid),
    };
  }

  #seal(key: StoredKey): SigningKeyRow {
    const { kty, kid, alg, use, n, e } = key.jwk;
    return {
      kid,
      state: key.state,
      publicJwk: { kty, kid, alg, use, n, e },
      sealedPrivate: this.cipher.seal(kid, JSON.stringify(privateMembers(key.jwk))),
      createdAt: new Date(key.createdAt),
      activatedAt: key.activatedAt === undefined ? null : new Date(key.activatedAt),
      retiredAt: key.retiredAt === undefined ? null : new Date(key.retiredAt),
    };
  }

  async #open(row: SigningKeyRow): Promise<StoredKey> {
    const publicPart = publicJwkSchema.safeParse(row.publicJwk);
    if (!publicPart.success || publicPart.data.kid !== row.kid || !(await kidMatches(publicPart.data))) {
      throw new KeyStoreError(`signing key ${row.kid}: its stored public key is malformed or does not match its kid`);
    }
    let members: unknown;
    try {
      members = JSON.parse(this.cipher.open(row.kid, row.sealedPrivate));
    } catch (error) {
      if (error instanceof KeyStoreError) throw error;
      throw new KeyStoreError(`signing key ${row.kid}: its decrypted private key is not JSON`);
    }
    const privatePart = privateMembersSchema.safeParse(members);
    if (!privatePart.success) throw new KeyStoreError(`signing key ${row.kid}: its decrypted private key is incomplete`);
    return {
      jwk: { ...publicPart.data, ...privatePart.data },
      state: row.state,
      createdAt: row.createdAt.toISOString(),
      activatedAt: iso(row.activatedAt),
      retiredAt: iso(row.retiredAt),
    };
  }
}
