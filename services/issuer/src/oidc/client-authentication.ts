import type Provider from 'oidc-provider';

import { secretMatches } from '../domain/secrets.js';
import type { ClientCache } from './client-cache.js';

/**
 * Client authentication (RFC 6749 §2.3.1) with secrets stored as SHA-256 digests: the engine
 * awaits `compareClientSecret`, which here hashes the presented secret and compares the digests
 * in constant time. A digest cannot key an HMAC, so `client_secret_jwt` stays off
 * (docs/engine.md#client-secrets).
 */
export function compareHashedSecrets(provider: Provider): void {
  provider.Client.prototype.compareClientSecret = function compareClientSecret(actual: string) {
    return typeof this.clientSecret === 'string' && secretMatches(actual, this.clientSecret);
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
