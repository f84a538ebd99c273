import type { Knex } from 'knex';

import type { RevocationStore } from '../domain/revocations.js';
import type { DomainStores } from '../domain/stores.js';
import { createApiKeyStore } from './api-keys.js';
import { createAuditStore } from './audit.js';
import { createClientStore } from './clients.js';
import { createThrottleStore } from './login-throttle.js';
import { createPayloadStore, type PayloadStore } from './payloads.js';
import { databaseReachable } from './readiness.js';
import { createReplayStore, type ReplayStore } from './replays.js';
import { createRevocationStore } from './revocations.js';
import { createSigningKeyStore, type SigningKeyStore } from './signing-keys.js';
import { createUserStore } from './users.js';

/** Every store, over one database handle. */
export interface Stores extends DomainStores {
  /** The engine's models. */
  readonly payloads: PayloadStore;
  /** Used `jti`s of client assertions and DPoP proofs. */
  readonly replays: ReplayStore;
  /** Revoked JWT access tokens and ended grants. */
  readonly revocations: RevocationStore;
  /** The database key store's rows (KEY_STORE=database; keys/database-store.ts seals and opens them). */
  readonly signingKeys: SigningKeyStore;
  /** Whether the database answers within `timeoutMs` (readiness). */
  reachable(timeoutMs: number): Promise<boolean>;
}

/**
 * The stores over `db`: the only place SQL is written.
 *
 * @example
 * ```ts
 * const stores = createStores(database.knex);
 * const clients = await listClients(stores.clients);
 * ```
 */
export function createStores(db: Knex): Stores {
  return {
    users: createUserStore(db),
    clients: createClientStore(db),
    apiKeys: createApiKeyStore(db),
    throttle: createThrottleStore(db),
    audit: createAuditStore(db),
    payloads: createPayloadStore(db),
    replays: createReplayStore(db),
    revocations: createRevocationStore(db),
    signingKeys: createSigningKeyStore(db),
    reachable: (timeoutMs) => databaseReachable(db, timeoutMs),
  };
}
