import type Provider from 'oidc-provider';

import { secretMatches } from '../domain/secrets.js';
import type { ClientCache } from './client-cache.js';
import { previousClientSecret } from './client-metadata.js';

/**
 * Whether `presented` is the client's secret (`currentHash`), or the one its last rotation
 * replaced while that is still accepted (`previous`, until `expiresAt`, epoch ms). Both digests
 * are compared whenever both exist, each in constant time, so the time taken tells nothing
 * about which one (if either) matched.
 */
export function secretAccepted(
  presented: string,
  currentHash: unknown,
  previous: { readonly hash: string; readonly expiresAt: number } | undefined,
  now = Date.now(),
): boolean {
  const current = typeof currentHash === 'string' && secretMatches(presented, currentHash);
  const replaced = previous !== undefined && secretMatches(presented, previous.hash);
  return current || (replaced && now < previous.expiresAt);
}

/**
 * Client authentication (RFC 6749 §2.3.1) with secrets stored as SHA-256 digests: the engine
 * awaits `compareClientSecret`, which here hashes the presented secret and compares the digests
 * in constant time. During a rotation's grace period the replaced secret is accepted too
 * (`secretAccepted`). A digest cannot key an HMAC, so `client_secret_jwt` stays off
 * (docs/engine.md#client-secrets).
 */
export function compareHashedSecrets(provider: Provider): void {
  provider.Client.prototype.compareClientSecret = function compareClientSecret(actual: string) {
    return secretAccepted(actual, this.clientSecret, previousClientSecret(this));
  };
}

/**
 * The engine's client lookup, through Sigil's client cache: validated clients are kept for as
 * long as their metadata is cached (the engine alone keeps 100 and validates again on every
 * other lookup).
 */
export function findClientsThroughCache(provider: Provider, clients: ClientCache): void {
  const engineFind = provider.Client.find.bind(provider.Client);
  provider.Client.find = (id: string) => (typeof id === 'string' && id !== '' ? clients.instance(provider, id, () => engineFind(id)) : engineFind(id));
}
