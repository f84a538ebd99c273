import v8 from 'node:v8';
import vm from 'node:vm';

import { describe, expect, it } from '@jest/globals';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { type Client, type ClientMetadata } from 'oidc-provider';

import { compactClient } from '../../src/oidc/compact-client.js';

/** V8's own answer to "are this object's properties plain fields (not a hash table)?". */
function hasFastProperties(object: object): boolean {
  v8.setFlagsFromString('--allow-natives-syntax');
  try {
    return vm.runInNewContext('%HasFastProperties(object)', { object }) as boolean;
  } finally {
    v8.setFlagsFromString('--no-allow-natives-syntax');
  }
}

const metadata = (id: string): ClientMetadata => ({
  client_id: id,
  client_secret: 'a'.repeat(64),
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: 'client_secret_basic',
});

/** Three clients made by the engine, as its client lookup makes them. */
async function engineClients(): Promise<Client[]> {
  const ids = ['first', 'second', 'third'];
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const provider = new Provider('http://127.0.0.1:1', {
    clients: ids.map(metadata),
    jwks: { keys: [{ ...(await exportJWK(privateKey)), alg: 'RS256', use: 'sig', kid: 'k' }] },
    features: { clientCredentials: { enabled: true }, devInteractions: { enabled: false } },
  });
  const clients = await Promise.all(ids.map((id) => provider.Client.find(id)));
  return clients.map((client) => {
    if (client === undefined) throw new Error('the engine did not find its static client');
    return client;
  });
}

describe('compactClient', () => {
  it('gives the engine’s clients plain fields where the engine’s own getter left them in a hash table', async () => {
    const clients = await engineClients();
    // why compactClient exists: past the first, the engine's clients are hash tables
    expect(clients.slice(1).map(hasFastProperties)).toEqual([false, false]);
    clients.forEach((client) => compactClient(client));
    expect(clients.map(hasFastProperties)).toEqual([true, true, true]);
  });

  it('changes nothing a caller can see: the same object, members, prototype and key store', async () => {
    const [, client] = await engineClients();
    if (client === undefined) throw new Error('no client');
    const before = { ...client };
    const prototype = Object.getPrototypeOf(client) as object;
    expect(compactClient(client)).toBe(client);
    expect({ ...client }).toEqual(before);
    expect(Object.getPrototypeOf(client)).toBe(prototype);
    expect(client.clientId).toBe('second');
    expect(client.grantTypeAllowed('client_credentials')).toBe(true);
    // the key store the engine's getter made on the first read is kept, and stays the same
    const keyStore = (client as unknown as { asymmetricKeyStore: object }).asymmetricKeyStore;
    expect(keyStore).toBeDefined();
    expect((client as unknown as { asymmetricKeyStore: object }).asymmetricKeyStore).toBe(keyStore);
    expect(await client.compareClientSecret('a'.repeat(64))).toBe(true);
  });

  it('gives every client one shared, frozen empty list for its empty lists, and keeps the values it shares with others', async () => {
    const [first, second] = await engineClients();
    if (first === undefined || second === undefined) throw new Error('no client');
    const before = [{ ...first }, { ...second }];
    [first, second].forEach((client) => compactClient(client));
    expect([{ ...first }, { ...second }]).toEqual(before);
    expect(first.redirectUris).toEqual([]);
    expect(first.redirectUris).toBe(second.redirectUris);
    expect(first.responseTypes).toBe(second.redirectUris);
    expect(Object.isFrozen(first.redirectUris)).toBe(true);
    // one client's list cannot be changed, so no change reaches another
    expect(() => (first.redirectUris as string[]).push('https://app.example.com/cb')).toThrow(TypeError);
    expect(second.redirectUris).toEqual([]);
    // a list with members stays the client's own
    expect(first.grantTypes).toEqual(['client_credentials']);
    expect(first.grantTypes).not.toBe(second.grantTypes);
    expect(first.grantTypeAllowed('client_credentials')).toBe(true);
    expect(first.redirectUriAllowed('https://app.example.com/cb')).toBe(false);
  });
});
