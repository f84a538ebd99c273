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
 * Turns the engine's client `client` into V8's compact form, and answers it (the same object).
 * The engine's getter replaces itself with the key store it makes on its first read, which
 * would put the client back into a hash table: it is read first, so that it is a plain value.
 */
export function compactClient<T extends object>(client: T): T {
  void (client as { asymmetricKeyStore?: unknown }).asymmetricKeyStore;
  lookUpThrough(Object.create(client) as Record<string, unknown>);
  return client;
}
