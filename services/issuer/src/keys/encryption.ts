import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

import { KeyStoreError } from './key-store.js';

/** The format of a sealed value: `v1.<key id>.<iv>.<ciphertext>.<tag>`, each part base64url. */
const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * A short public name for an encryption key (a hash of it, truncated), so that a sealed value
 * says which key opens it and `sigil keys reencrypt` can tell what is left under an old one.
 */
export function encryptionKeyId(key: Buffer): string {
  return createHash('sha256').update('sigil signing-key encryption key id\0').update(key).digest('base64url').slice(0, 8);
}

/**
 * AES-256-GCM under KEYS_ENCRYPTION_KEY: the first key seals, every key opens (a rotation of the
 * encryption key: add the new one first, run `sigil keys reencrypt`, then drop the old one).
 * Each value is bound to its signing key's `kid` as associated data, so a sealed value copied
 * to another row does not open.
 */
export class KeyCipher {
  readonly #keys: ReadonlyMap<string, Buffer>;
  readonly #primary: { readonly id: string; readonly key: Buffer };

  constructor(keys: readonly Buffer[]) {
    const [first] = keys;
    if (first === undefined) throw new KeyStoreError('KEYS_ENCRYPTION_KEY is required with KEY_STORE=database');
    for (const key of keys) if (key.length !== 32) throw new KeyStoreError('each KEYS_ENCRYPTION_KEY entry must be 32 bytes');
    this.#keys = new Map(keys.map((key) => [encryptionKeyId(key), key]));
    this.#primary = { id: encryptionKeyId(first), key: first };
  }

  /** The id of the key that seals. */
  get primaryId(): string {
    return this.#primary.id;
  }

  seal(kid: string, plaintext: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#primary.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(kid, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [VERSION, this.#primary.id, iv.toString('base64url'), ciphertext.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
  }

  /** The id of the key `sealed` was sealed with. */
  static sealedWith(sealed: string): string | undefined {
    const parts = sealed.split('.');
    return parts.length === 5 && parts[0] === VERSION ? parts[1] : undefined;
  }

  /** @throws KeyStoreError when no configured key opens it (a wrong key, or a tampered value) */
  open(kid: string, sealed: string): string {
    const [version, keyId, iv, ciphertext, tag, ...rest] = sealed.split('.');
    if (version !== VERSION || keyId === undefined || iv === undefined || ciphertext === undefined || tag === undefined || rest.length > 0) {
      throw new KeyStoreError(`signing key ${kid}: its stored private key is not in a format this version reads`);
    }
    const key = this.#keys.get(keyId);
    if (key === undefined) {
      throw new KeyStoreError(`signing key ${kid} is encrypted under a key that is not in KEYS_ENCRYPTION_KEY (key id ${keyId}; configured: ${[...this.#keys.keys()].join(', ')})`);
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'), { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(kid, 'utf8'));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      throw new KeyStoreError(`signing key ${kid} does not decrypt with KEYS_ENCRYPTION_KEY (key id ${keyId}): the stored value was altered, or the key is not the one it was sealed with`);
    }
  }
}
