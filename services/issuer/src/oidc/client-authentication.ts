import Provider, { errors, type Client } from 'oidc-provider';

import { secretMatches } from '../domain/secrets.js';
import type { ClientCache } from './client-cache.js';
import { compactClient } from './compact-client.js';
import { previousClientSecret, secretMethods, type SecretMethod } from './client-metadata.js';

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
 * Refuses a secret presented in a way the client was not registered for (`--auth
 * client_secret_basic` or `client_secret_post`: that one only). The engine accepts either way
 * for a client registered with either, so this is Sigil's check.
 * @throws errors.InvalidClientAuth (401 invalid_client)
 */
export function assertSecretMethod(client: Client, presented: SecretMethod): void {
  if (!secretMethods(client).includes(presented)) {
    throw new errors.InvalidClientAuth(`the client presented its secret by ${presented}, and is registered for ${secretMethods(client).join(' or ') || 'no secret'}`);
  }
}

/** How the engine's request in progress carries its client secret: a form parameter (RFC 6749 §2.3.1 client_secret_post) or else HTTP Basic. */
function presentedSecretMethod(): SecretMethod | undefined {
  const { ctx } = Provider;
  if (ctx === undefined) return undefined;
  return ctx.oidc.params?.['client_secret'] === undefined ? 'client_secret_basic' : 'client_secret_post';
}

/**
 * Client authentication (RFC 6749 §2.3.1) with secrets stored as SHA-256 digests: the engine
 * awaits `compareClientSecret`, which here checks the way the secret was presented
 * (`assertSecretMethod`), then hashes it and compares the digests in constant time. During a
 * rotation's grace period the replaced secret is accepted too (`secretAccepted`). A digest
 * cannot key an HMAC, so `client_secret_jwt` stays off (docs/engine.md#client-secrets). Outside
 * an engine request (the revocation feed) the caller checks the way itself.
 */
export function compareHashedSecrets(provider: Provider): void {
  provider.Client.prototype.compareClientSecret = function compareClientSecret(actual: string) {
    const presented = presentedSecretMethod();
    if (presented !== undefined) assertSecretMethod(this, presented);
    return secretAccepted(actual, this.clientSecret, previousClientSecret(this));
  };
}

/**
 * The engine's client lookup, through Sigil's client cache: validated clients are kept for as
 * long as their metadata is cached (the engine alone keeps 100 and validates again on every
 * other lookup), each in V8's compact form (compact-client.ts).
 */
export function findClientsThroughCache(provider: Provider, clients: ClientCache): void {
  const engineFind = provider.Client.find.bind(provider.Client);
  const make = async (id: string) => {
    const client = await engineFind(id);
    return client === undefined ? undefined : compactClient(client);
  };
  provider.Client.find = (id: string) => (typeof id === 'string' && id !== '' ? clients.instance(provider, id, () => make(id)) : engineFind(id));
}
