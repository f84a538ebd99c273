import type { Config } from '../config.js';
import type { ChangeFeed } from '../storage/changes.js';
import type { SigningKeyStore } from '../storage/signing-keys.js';
import { DatabaseKeyStore } from './database-store.js';
import { KeyCipher } from './encryption.js';
import { FileKeyStore } from './file-store.js';
import type { KeyStore } from './key-store.js';

/** How often the file store looks at KEYS_DIR, and the database store re-reads while notifications do not arrive. */
export const KEYS_POLL_INTERVAL_MS = 2000;

/** The key store KEY_STORE names: KEYS_DIR, or the database (`rows`) under KEYS_ENCRYPTION_KEY. */
export function openKeyStore(config: Pick<Config, 'keyStore' | 'keysDir' | 'keysEncryptionKeys'>, rows: SigningKeyStore, changes?: ChangeFeed): KeyStore {
  if (config.keyStore === 'files') return new FileKeyStore(config.keysDir, { pollMs: KEYS_POLL_INTERVAL_MS });
  return new DatabaseKeyStore(rows, new KeyCipher(config.keysEncryptionKeys), { pollMs: KEYS_POLL_INTERVAL_MS, ...(changes === undefined ? {} : { changes }) });
}
