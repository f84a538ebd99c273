import { AsyncLocalStorage } from 'node:async_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';

import { describe, expect, it } from '@jest/globals';
import type { AdapterPayload } from 'oidc-provider';

import { ClientCache } from '../../src/oidc/client-cache.js';
import { EVERYTHING, type ChangeFeed } from '../../src/storage/changes.js';

/** A change feed driven by the test: `change` is what a committed write's notification does. */
function testFeed(live = true) {
  const listeners: ((id: string) => void)[] = [];
  const feed: ChangeFeed & { live: boolean; change(id: string): void } = {
    live,
    subscribe: (table, listener) => {
      if (table === 'clients') listeners.push(listener);
    },
    close: async () => undefined,
    change: (id) => listeners.forEach((listener) => listener(id)),
  };
  return feed;
}

/** A table of clients and a loader that counts its reads; `gate` holds reads until released. */
function testTable() {
  const rows = new Map<string, AdapterPayload>();
  let reads = 0;
  let gate: Promise<void> | undefined;
  return {
    rows,
    get reads() {
      return reads;
    },
    hold() {
      let release: () => void = () => undefined;
      gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      return () => {
        gate = undefined;
        release();
      };
    },
    load: async (id: string): Promise<AdapterPayload | undefined> => {
      reads += 1;
      const snapshot = rows.get(id);
      const copy = snapshot === undefined ? undefined : structuredClone(snapshot);
      if (gate !== undefined) await gate;
      return copy;
    },
  };
}

const metadata = (grant: string): AdapterPayload => ({ client_id: 'c1', grant_types: [grant], redirect_uris: [] });

/** A cache over a table that holds client c1 (client credentials), and the feed it listens to. */
function cacheWithC1(live?: boolean) {
  const table = testTable();
  const feed = testFeed(live);
  table.rows.set('c1', metadata('client_credentials'));
  return { table, feed, cache: new ClientCache(table.load, feed) };
}

describe('ClientCache', () => {
  it('reads a client once, then serves copies from memory until the client changes', async () => {
    const { table, feed, cache } = cacheWithC1();

    const first = await cache.find('c1');
    expect(first).toEqual(metadata('client_credentials'));
    (first?.['grant_types'] as string[]).push('password'); // the engine's copy is its own
    expect(await cache.find('c1')).toEqual(metadata('client_credentials'));
    expect(table.reads).toBe(1);

    table.rows.set('c1', metadata('password'));
    feed.change('c1');
    expect(await cache.find('c1')).toEqual(metadata('password'));
    expect(table.reads).toBe(2);
  });

  it('shares one read among concurrent lookups of the same id', async () => {
    const table = testTable();
    table.rows.set('c1', metadata('client_credentials'));
    const cache = new ClientCache(table.load, testFeed());
    const release = table.hold();
    const lookups = Promise.all([cache.find('c1'), cache.find('c1'), cache.find('c1')]);
    release();
    expect(await lookups).toEqual([metadata('client_credentials'), metadata('client_credentials'), metadata('client_credentials')]);
    expect(table.reads).toBe(1);
  });

  it('never keeps a read that a change overtook: the lookup reads again, and so does the next one', async () => {
    const { table, feed, cache } = cacheWithC1();

    const release = table.hold();
    const lookup = cache.find('c1'); // reads the old row, then waits
    await new Promise((resolve) => setImmediate(resolve));
    table.rows.set('c1', metadata('password'));
    feed.change('c1'); // the write commits while the read is still on its way
    release();
    expect(await lookup).toEqual(metadata('password'));
    expect(await cache.find('c1')).toEqual(metadata('password'));
  });

  it('remembers an unknown id only briefly, and forgets it as soon as a client with that id is written', async () => {
    const table = testTable();
    const feed = testFeed();
    const cache = new ClientCache(table.load, feed, { missingTtlMs: 50 });

    expect(await cache.find('c1')).toBeUndefined();
    expect(await cache.find('c1')).toBeUndefined();
    expect(table.reads).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(await cache.find('c1')).toBeUndefined();
    expect(table.reads).toBe(2);

    table.rows.set('c1', metadata('client_credentials'));
    feed.change('c1');
    expect(await cache.find('c1')).toEqual(metadata('client_credentials'));
  });

  it('reads the database every time while notifications are not arriving', async () => {
    const { table, cache } = cacheWithC1(false);
    await cache.find('c1');
    await cache.find('c1');
    expect(table.reads).toBe(2);
    expect(cache.size).toBe(0);
  });

  it('drops everything when told that anything may have changed', async () => {
    const table = testTable();
    const feed = testFeed();
    table.rows.set('c1', metadata('client_credentials'));
    table.rows.set('c2', { ...metadata('client_credentials'), client_id: 'c2' });
    const cache = new ClientCache(table.load, feed);
    await cache.find('c1');
    await cache.find('c2');
    expect(cache.size).toBe(2);
    feed.change(EVERYTHING);
    expect(cache.size).toBe(0);
  });

  it('passes a failed read on, and keeps nothing from it', async () => {
    const feed = testFeed();
    let fail = true;
    const cache = new ClientCache(async () => {
      if (fail) throw new Error('connection refused');
      return metadata('client_credentials');
    }, feed);
    await expect(cache.find('c1')).rejects.toThrow('connection refused');
    fail = false;
    expect(await cache.find('c1')).toEqual(metadata('client_credentials'));
  });

  it('holds at most `max` clients', async () => {
    const table = testTable();
    for (let i = 0; i < 10; i += 1) table.rows.set(`c${i}`, { ...metadata('client_credentials'), client_id: `c${i}` });
    const cache = new ClientCache(table.load, testFeed(), { max: 4 });
    for (let i = 0; i < 10; i += 1) await cache.find(`c${i}`);
    expect(cache.size).toBe(4);
  });

  describe('instance', () => {
    it("keeps the engine's client made from the cached metadata, one per engine, until the client changes", async () => {
      const { table, feed, cache } = cacheWithC1();
      let made = 0;
      const make = async () => ({ made: (made += 1), metadata: await cache.find('c1') });
      const engine = {};
      const first = await cache.instance(engine, 'c1', make);
      expect(await cache.instance(engine, 'c1', make)).toBe(first);
      expect(made).toBe(1);

      expect(table.reads).toBe(1);

      // after a key rotation the engine is rebuilt: its clients are its own. The metadata's text
      // was dropped once the first client was made, so the new engine's lookup reads the row again
      const otherEngine = {};
      expect(await cache.instance(otherEngine, 'c1', make)).not.toBe(first);
      expect(made).toBe(2);
      expect(table.reads).toBe(2);

      table.rows.set('c1', metadata('password'));
      feed.change('c1');
      const changed = await cache.instance(otherEngine, 'c1', make);
      expect(changed).toMatchObject({ made: 3, metadata: metadata('password') });
      expect(table.reads).toBe(3);
    });

    it('shares one make among concurrent lookups, and keeps its client once made', async () => {
      const { cache } = cacheWithC1();
      let made = 0;
      const engine = {};
      const make = async () => {
        await new Promise((resolve) => setImmediate(resolve));
        return { made: (made += 1) };
      };
      const [a, b, c] = await Promise.all([cache.instance(engine, 'c1', make), cache.instance(engine, 'c1', make), cache.instance(engine, 'c1', make)]);
      expect(made).toBe(1);
      expect(a).toBe(b);
      expect(b).toBe(c);
      expect(await cache.instance(engine, 'c1', make)).toBe(a);
    });

    it('keeps nothing of the request that first asked: the client, not the promise that made it (which carries its async context)', async () => {
      v8.setFlagsFromString('--expose-gc');
      const gc = vm.runInNewContext('gc') as () => void;
      const { cache } = cacheWithC1();
      // the engine keeps its koa context (request, response, the token issued) in an AsyncLocalStorage
      const requestContext = new AsyncLocalStorage<object>();
      const engine = {};
      const ask = async () => {
        const request = { body: 'x'.repeat(10_000) };
        const client = await requestContext.run(request, () => cache.instance(engine, 'c1', async () => ({ clientId: 'c1' })));
        return { client, request: new WeakRef(request) };
      };
      const { client, request } = await ask();
      for (let i = 0; i < 5 && request.deref() !== undefined; i += 1) {
        await new Promise((resolve) => setImmediate(resolve));
        gc();
      }
      expect(request.deref()).toBeUndefined();
      expect(await cache.instance(engine, 'c1', async () => ({ clientId: 'another' }))).toBe(client);
    });

    it('answers an unknown id without asking the engine', async () => {
      const cache = new ClientCache(testTable().load, testFeed());
      let asked = 0;
      expect(await cache.instance({}, 'nope', async () => ({ asked: (asked += 1) }))).toBeUndefined();
      expect(asked).toBe(0);
    });

    it("asks the engine every time while notifications are not arriving, and never keeps a failed make", async () => {
      const { feed, cache } = cacheWithC1(false);
      let made = 0;
      const engine = {};
      await cache.instance(engine, 'c1', async () => ({ made: (made += 1) }));
      await cache.instance(engine, 'c1', async () => ({ made: (made += 1) }));
      expect(made).toBe(2);

      feed.live = true;
      await expect(cache.instance(engine, 'c1', () => Promise.reject(new Error('invalid metadata')))).rejects.toThrow('invalid metadata');
      await new Promise((resolve) => setImmediate(resolve));
      expect(await cache.instance(engine, 'c1', async () => ({ made: (made += 1) }))).toEqual({ made: 3 });
    });
  });
});
