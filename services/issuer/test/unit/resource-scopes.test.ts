import { describe, expect, it } from '@jest/globals';

import { ResourceScopes } from '../../src/oidc/resource-scopes.js';

/** A feed driven by the test, and a store whose reads are counted and may be held or fail. */
function setUp() {
  const listeners: ((id: string) => void)[] = [];
  const feed = { live: true, subscribe: (_table: string, listener: (id: string) => void) => void listeners.push(listener) };
  const store = {
    reads: 0,
    scope: 'orders:read',
    fail: false,
    gate: undefined as Promise<void> | undefined,
    async resourcePolicy() {
      store.reads += 1;
      const scope = store.scope;
      if (store.gate !== undefined) await store.gate;
      if (store.fail) throw new Error('connection refused');
      return { declared: new Map([['https://orders', [scope]]]), exchangeTargets: new Map<string, string[]>() };
    },
  };
  const scopes = new ResourceScopes(store, feed, new Map([['https://issuer/admin', ['sigil:admin']]]));
  return { store, scopes, change: () => listeners.forEach((listener) => listener('any')) };
}

describe('ResourceScopes', () => {
  it('reads once while notifications arrive, shares a read in flight, and reads again after a change', async () => {
    const { store, scopes, change } = setUp();
    const [a, b] = await Promise.all([scopes.declared(), scopes.declared()]);
    expect(a).toBe(b);
    expect(a.get('https://orders')).toEqual(['orders:read']);
    expect(a.get('https://issuer/admin')).toEqual(['sigil:admin']);
    expect(await scopes.declared()).toBe(a);
    expect(store.reads).toBe(1);

    store.scope = 'orders:write';
    change();
    expect((await scopes.declared()).get('https://orders')).toEqual(['orders:write']);
    expect(store.reads).toBe(2);
  });

  it('never keeps a read that a change overtook, nor a failed one', async () => {
    const { store, scopes, change } = setUp();
    let release: () => void = () => undefined;
    store.gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const overtaken = scopes.declared(); // reads orders:read, then waits
    await new Promise((resolve) => setImmediate(resolve));
    store.scope = 'orders:write';
    change();
    store.gate = undefined;
    release();
    expect((await overtaken).get('https://orders')).toEqual(['orders:read']); // its caller still gets it
    expect((await scopes.declared()).get('https://orders')).toEqual(['orders:write']);

    change();
    store.fail = true;
    await expect(scopes.declared()).rejects.toThrow('connection refused');
    store.fail = false;
    expect((await scopes.declared()).get('https://orders')).toEqual(['orders:write']);
    expect(store.reads).toBe(4);
  });
});
