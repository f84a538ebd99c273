import type { Logger } from '../logger.js';
import { keysFingerprint, readKeys, removeExpiredKeys, signingOrder, type StoredKey } from './key-store.js';

export interface KeyReloaderOptions {
  readonly dir: string;
  /** How often KEYS_DIR is checked for changes. */
  readonly intervalMs: number;
  /** How long a retired key stays published: the longest token lifetime plus a margin. */
  readonly retentionSeconds: number;
  /** Called with the new key set, signing key first, whenever the files change. */
  readonly onChange: (keys: StoredKey[]) => void;
  readonly logger: Logger;
}

/**
 * Polls KEYS_DIR so that every replica picks up `sigil keys generate|rotate|retire`
 * without a restart, and removes retired keys once every token they signed has expired.
 * A key set that is momentarily invalid (a rotation half-written) is ignored until the
 * next poll.
 *
 * @returns a function that stops polling
 */
export function startKeyReloader(initial: readonly StoredKey[], options: KeyReloaderOptions): () => Promise<void> {
  const { dir, logger } = options;
  let keys = [...initial];
  let fingerprint: string | undefined;
  let running: Promise<void> = Promise.resolve();

  const poll = async () => {
    const removed = await removeExpiredKeys(dir, options.retentionSeconds);
    if (removed.length > 0) logger.info({ removed }, 'retired keys removed');

    const seen = await keysFingerprint(dir);
    if (seen === fingerprint) return;
    const loaded = await readKeys(dir);
    if (loaded.filter((key) => key.state === 'current').length !== 1) {
      logger.debug('key set has no single current key yet; keeping the loaded keys');
      return;
    }
    fingerprint = seen;
    const changed =
      loaded.length !== keys.length ||
      loaded.some((key) => !keys.some((known) => known.jwk.kid === key.jwk.kid && known.state === key.state));
    if (!changed) return;
    keys = signingOrder(loaded);
    options.onChange(keys);
    logger.info({ keys: keys.map((key) => `${key.jwk.kid} (${key.state})`) }, 'signing keys reloaded');
  };

  // a failure that repeats (a key file with the wrong mode, say) is logged once, as one line,
  // until a poll succeeds again or the failure changes
  let lastFailure: string | undefined;
  const failed = (error: unknown) => {
    const reason = error instanceof Error ? error.message : String(error);
    if (reason === lastFailure) return;
    lastFailure = reason;
    logger.warn({ reason }, 'key reload failed; the loaded keys stay in use');
  };
  const succeeded = () => {
    if (lastFailure === undefined) return;
    lastFailure = undefined;
    logger.info('key reload works again');
  };

  const timer = setInterval(() => {
    running = running.then(poll).then(succeeded, failed);
  }, options.intervalMs);
  timer.unref();

  return async () => {
    clearInterval(timer);
    await running;
  };
}
