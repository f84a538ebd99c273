import type { ApiKeyStore } from './api-keys.js';
import type { AuditStore } from './audit.js';
import type { ClientStore } from './clients.js';
import type { ThrottleStore } from './login-throttle.js';
import type { UserStore } from './users.js';

/** Everything the use cases of `domain/` read and write, handed to them by the caller. */
export interface DomainStores {
  readonly users: UserStore;
  readonly clients: ClientStore;
  readonly apiKeys: ApiKeyStore;
  readonly throttle: ThrottleStore;
  readonly audit: AuditStore;
}
