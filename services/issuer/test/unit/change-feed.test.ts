import { describe, expect, it } from '@jest/globals';
import type { Knex } from 'knex';

import { CHANGES_CHANNEL, EVERYTHING, startChangeFeed } from '../../src/storage/changes.js';

/**
 * A database whose NOTIFY reaches the listener only while `delivering` is true (false: a
 * connection that died silently, or a pooler that does not carry LISTEN).
 */
function testDatabase() {
  let onMessage: (payload: string) => void = () => undefined;
  let onState: (live: boolean) => void = () => undefined;
  const state = { delivering: true };
  const knex = {
    raw: async (_sql: string, [channel, payload]: [string, string]) => {
      if (channel === CHANGES_CHANNEL && state.delivering) setImmediate(() => onMessage(payload));
      return { rows: [] };
    },
  } as unknown as Knex;
  return {
    state,
    database: {
      knex,
      listen: async (_channel: string, message: (payload: string) => void, stateChange: (live: boolean) => void) => {
        onMessage = message;
        onState = stateChange;
        stateChange(true);
        return async () => undefined;
      },
    },
    notify: (payload: string) => onMessage(payload),
    connection: (live: boolean) => onState(live),
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('startChangeFeed', () => {
  it('is live once its own heartbeat came back, and passes row changes to the table they belong to', async () => {
    const db = testDatabase();
    const feed = await startChangeFeed(db.database, { heartbeatMs: 60_000, heartbeatTimeoutMs: 200 });
    try {
      expect(feed.live).toBe(true);
      const heard: string[] = [];
      feed.subscribe('clients', (id) => heard.push(id));
      db.notify('clients:abc');
      db.notify('users:def');
      db.notify('clients:*');
      expect(heard).toEqual(['abc', EVERYTHING]);
    } finally {
      await feed.close();
    }
    expect(feed.live).toBe(false);
  });

  it('is not live when notifications do not arrive (a pooler without LISTEN)', async () => {
    const db = testDatabase();
    db.state.delivering = false;
    const feed = await startChangeFeed(db.database, { heartbeatMs: 60_000, heartbeatTimeoutMs: 50 });
    try {
      expect(feed.live).toBe(false);
    } finally {
      await feed.close();
    }
  });

  it('stops being live when a heartbeat goes missing, and is live again once one comes back', async () => {
    const db = testDatabase();
    const feed = await startChangeFeed(db.database, { heartbeatMs: 100, heartbeatTimeoutMs: 50 });
    const heard: string[] = [];
    feed.subscribe('clients', (id) => heard.push(id));
    try {
      expect(feed.live).toBe(true);
      db.state.delivering = false; // the listening connection died without a word
      await sleep(250);
      expect(feed.live).toBe(false);
      expect(heard).toEqual([EVERYTHING]);
      db.state.delivering = true;
      await sleep(250);
      expect(feed.live).toBe(true);
      expect(heard).toEqual([EVERYTHING, EVERYTHING]);
    } finally {
      await feed.close();
    }
  });

  it('is not live while its listening connection is down, and proves the new one with a heartbeat', async () => {
    const db = testDatabase();
    const feed = await startChangeFeed(db.database, { heartbeatMs: 60_000, heartbeatTimeoutMs: 200 });
    try {
      db.connection(false);
      expect(feed.live).toBe(false);
      db.connection(true);
      expect(feed.live).toBe(false); // not before its heartbeat is back
      await sleep(20);
      expect(feed.live).toBe(true);
    } finally {
      await feed.close();
    }
  });
});
