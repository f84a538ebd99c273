import type { Logger } from '../logger.js';
import { generateRsaKey, sameKeySet, signingOrder, type KeyStore, type StoredKey } from './key-store.js';
import { applyDueSteps, dueSteps, type KeyPolicy, type KeyStep } from './lifecycle.js';

export interface KeyMaintenanceOptions {
  readonly store: KeyStore;
  readonly policy: KeyPolicy;
  /** Called with the new key set, signing key first, whenever it changes. */
  readonly onChange: (keys: readonly StoredKey[]) => void;
  /** Called for each rotation step this replica took (for metrics). */
  readonly onStep?: (step: KeyStep) => void;
  readonly logger: Logger;
  /** How often due steps are looked for, in ms; default from the policy (a tenth of the lead, 1–60 s). */
  readonly tickMs?: number;
  readonly now?: () => Date;
}

export interface KeyMaintenance {
  /** The keys in use, signing key first. */
  keys(): readonly StoredKey[];
  /** Re-reads the keys now (after a change made in this process); resolves once they are in use. */
  refresh(): Promise<void>;
  /** Stops watching and rotating; resolves once a step in progress has finished. */
  stop(): Promise<void>;
}

function defaultTickMs(policy: KeyPolicy): number {
  const shortest = Math.min(policy.publishLead, policy.rotationInterval ?? Number.POSITIVE_INFINITY);
  return Math.min(60_000, Math.max(1000, Math.floor((shortest * 1000) / 10)));
}

/**
 * Keeps this replica's keys current and, where the store can be written, takes the rotation
 * steps that are due (keys/lifecycle.ts `dueSteps`). Every replica runs it: a step is taken under
 * the store's lock, decided again from the keys read under it, and a replica that finds the lock
 * held skips the tick, so each step happens once however many replicas run. Keys are re-read when
 * the store says they may have changed (a notification, or a changed directory), never on the
 * token path. A key set momentarily without a single current key (a file rotation half-written)
 * is ignored until the next change.
 */
export function startKeyMaintenance(initial: readonly StoredKey[], options: KeyMaintenanceOptions): KeyMaintenance {
  const { store, policy, logger } = options;
  const now = options.now ?? (() => new Date());
  let keys: readonly StoredKey[] = signingOrder(initial);
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  // whether the store can be written: undefined until the first tick asks
  let writable: boolean | undefined;

  // a failure that repeats (a key file with the wrong mode, say) is logged once, as one line,
  // until the same work succeeds again or the failure changes
  const tracked = (what: string) => {
    let lastFailure: string | undefined;
    return {
      failed: (error: unknown) => {
        const reason = error instanceof Error ? error.message : String(error);
        if (reason === lastFailure) return;
        lastFailure = reason;
        logger.warn({ reason }, `${what} failed; the loaded keys stay in use`);
      },
      succeeded: () => {
        if (lastFailure === undefined) return;
        lastFailure = undefined;
        logger.info(`${what} works again`);
      },
    };
  };
  const reloading = tracked('key reload');
  const rotating = tracked('key rotation');

  const reload = async () => {
    const loaded = await store.list();
    if (loaded.filter((key) => key.state === 'current').length !== 1) {
      logger.debug('key set has no single current key yet; keeping the loaded keys');
      return;
    }
    if (sameKeySet(loaded, keys)) return;
    keys = signingOrder(loaded);
    options.onChange(keys);
    logger.info({ keys: keys.map((key) => `${key.jwk.kid} (${key.state})`) }, 'signing keys reloaded');
  };

  const tick = async () => {
    writable ??= await store.writable();
    const due = writable ? dueSteps(keys, policy, now()) : [];
    if (due.length === 0) return;
    const publishing = due.some((step) => step.step === 'publish');
    // generated before the lock is taken: no other replica waits for it
    const spare = publishing ? await generateRsaKey() : undefined;
    const outcome = await store.tryChange((fresh, editor) => applyDueSteps(fresh, editor, policy, now(), spare));
    for (const step of outcome?.value ?? []) {
      logger.info({ step: step.step, kid: step.kid, ...(step.step === 'promote' ? { retired: step.retires } : {}) }, 'signing key rotation step');
      options.onStep?.(step);
    }
    // taken here, or found already taken (this replica's keys were behind): either way, catch up now
    if (outcome !== undefined) await reload();
  };

  // at most one of each kind waits behind the work in progress: a slow tick (a key being
  // generated) never piles up ticks in front of the reload that would make them unnecessary
  const queued = new Set<() => Promise<void>>();
  const enqueue = (work: () => Promise<void>, outcome: ReturnType<typeof tracked>) => {
    if (stopped || queued.has(work)) return;
    queued.add(work);
    running = running
      .then(() => {
        queued.delete(work);
        return work();
      })
      .then(outcome.succeeded, outcome.failed);
  };
  const unwatch = store.watch(() => enqueue(reload, reloading));
  const timer = setInterval(() => enqueue(tick, rotating), options.tickMs ?? defaultTickMs(policy));
  timer.unref();
  if (policy.rotationInterval !== undefined) {
    void store.writable().then((canWrite) => {
      if (!canWrite) logger.warn(`KEY_ROTATION_INTERVAL is set but ${store.description} is read-only: rotate where it is written`);
    }, rotating.failed);
  }

  return {
    keys: () => keys,
    async refresh() {
      enqueue(reload, reloading);
      await running;
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      unwatch();
      await running;
    },
  };
}
