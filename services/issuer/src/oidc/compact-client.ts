/**
 * The engine's clients in V8's compact form, for the client cache (client-cache.ts), which keeps
 * one for each of up to CLIENT_CACHE_MAX clients.
 *
 * Each client the engine makes gets a getter of its own (`asymmetricKeyStore`, a new function
 * for every client: oidc-provider's models/client.js). V8 describes objects built the same way
 * by one shared hidden class, but not objects whose accessors are different functions: from the
 * second client on, each client's properties live in a hash table of its own (about 1.6 KB for
 * Sigil's metadata). V8 turns an object back into plain fields, with a hidden class of its own,
 * once a property lookup goes through it as a prototype. That saves about 0.7 KB per client
 * (docs/engine.md#client-lookups-and-the-100-client-cache); it changes no property, value or
 * prototype, and should a later V8 not do it, the client stays as the engine made it and only
 * the memory shows it (the bench's `heapPerClient`).
 */

/** A lookup of a name no client has: what makes V8 turn the prototype it passes through into fields. */
function lookUpThrough(receiver: Readonly<Record<string, unknown>>): unknown {
  return receiver['sigilAbsentProperty'];
}

// V8 gives a function its lookup caches only after a few calls, and only a lookup that has one
// converts the prototype: a few calls now make the first client's conversion like every other
for (let warm = 0; warm < 16; warm += 1) lookUpThrough(Object.create({ warm }) as Record<string, unknown>);

/**
 * The members of the engine's client whose values many clients have in common: a few ways to
 * authenticate, grant types, and a deployment's vocabulary of scopes, roles and resources. Each
 * client's metadata is parsed from text of its own, so each holds copies of these strings
 * (32–48 bytes each, about 200 bytes per client); {@link shareValues} keeps one of each.
 * Members that differ per client (its id, name, secret digest, redirect URIs) are not listed.
 */
const SHARED_STRINGS = ['tokenEndpointAuthMethod', 'applicationType', 'subjectType', 'scope'];
const SHARED_LISTS = ['grantTypes', 'responseTypes', 'allowed_scopes', 'roles', 'resources', 'secret_methods', 'may_exchange_for'];

/** At most this many distinct values are shared; past that, a client keeps its own copies. */
const SHARED_VALUES_MAX = 4096;
const shared = new Map<string, string>();

function sharedValue(value: string): string {
  const known = shared.get(value);
  if (known !== undefined) return known;
  if (shared.size < SHARED_VALUES_MAX) shared.set(value, value);
  return value;
}

/**
 * One empty list for every client's empty lists (redirect URIs of a machine client, its roles,
 * response types: 32 bytes each): frozen, so that a change to one could not reach another (the
 * engine changes none; in its strict-mode code a change would throw, not spread).
 */
const EMPTY: readonly unknown[] = Object.freeze([]);

/**
 * Replaces the client's copies of common values by one string each (the same characters), and
 * its empty lists by {@link EMPTY}.
 */
function shareValues(client: Record<string, unknown>): void {
  for (const member of Object.keys(client)) {
    const value = client[member];
    if (Array.isArray(value) && value.length === 0) client[member] = EMPTY;
  }
  for (const member of SHARED_STRINGS) {
    const value = client[member];
    if (typeof value === 'string') client[member] = sharedValue(value);
  }
  for (const member of SHARED_LISTS) {
    const list = client[member];
    if (!Array.isArray(list)) continue;
    for (let index = 0; index < list.length; index += 1) {
      const value: unknown = list[index];
      if (typeof value === 'string') list[index] = sharedValue(value);
    }
  }
}

/**
 * Turns the engine's client `client` into V8's compact form, and answers it (the same object).
 * The engine's getter replaces itself with the key store it makes on its first read, which
 * would put the client back into a hash table: it is read first, so that it is a plain value.
 */
export function compactClient<T extends object>(client: T): T {
  void (client as { asymmetricKeyStore?: unknown }).asymmetricKeyStore;
  shareValues(client as Record<string, unknown>);
  lookUpThrough(Object.create(client) as Record<string, unknown>);
  return client;
}
