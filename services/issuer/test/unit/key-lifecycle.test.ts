import fs from 'node:fs/promises';

import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';

import { FileKeyStore, keyFile, readKeys } from '../../src/keys/file-store.js';
import { KeyChangeRefused, KeyRequestError, type StoredKey } from '../../src/keys/key-store.js';
import {
  applyDueSteps,
  dueSteps,
  ensureSigningKey,
  generateKey,
  jwksMaxAge,
  nextRotationAt,
  retireKey,
  rotateKeys,
  type KeyPolicy,
} from '../../src/keys/lifecycle.js';
import { temporaryDir } from '../support/backends.js';

const states = async (dir: string) => Object.fromEntries((await readKeys(dir)).map((key) => [key.jwk.kid, key.state]));
const at = (iso: string) => new Date(iso);
const plus = (date: Date, seconds: number) => new Date(date.getTime() + seconds * 1000);

async function refusal(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a refusal');
}

describe('key lifecycle (file store)', () => {
  let dir: string;
  let store: FileKeyStore;
  const LEAD = 3600;

  beforeEach(async () => {
    dir = await temporaryDir('keys');
    store = new FileKeyStore(dir);
  });

  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('when the next key has been published for the lead, rotate promotes it, retires current and publishes a new next', async () => {
    const [first] = await ensureSigningKey(store);
    const published = at('2026-11-29T09:00:00.000Z');
    const next = await generateKey(store, undefined, published);
    const now = plus(published, LEAD);
    const rotation = await rotateKeys(store, { publishLead: LEAD, now });
    expect(rotation.current.jwk.kid).toBe(next.jwk.kid);
    expect(rotation.current.activatedAt).toBe(now.toISOString());
    expect(rotation.retired?.jwk.kid).toBe(first?.jwk.kid);
    expect(rotation.retired?.retiredAt).toBe(now.toISOString());
    expect(await states(dir)).toEqual({ [first?.jwk.kid ?? '']: 'retired', [next.jwk.kid]: 'current', [rotation.next.jwk.kid]: 'next' });
  });

  it('when the next key has been published for less than the lead, rotate refuses, says how long is left and changes nothing; --force promotes it', async () => {
    const [first] = await ensureSigningKey(store);
    const published = at('2026-11-29T09:00:00.000Z');
    const next = await generateKey(store, undefined, published);
    const before = await states(dir);

    const error = await refusal(rotateKeys(store, { publishLead: LEAD, now: plus(published, 600) }));
    expect(error).toBeInstanceOf(KeyChangeRefused);
    expect(error.message).toBe(
      `next key ${next.jwk.kid} has been published for 600 s of the 3600 s KEY_PUBLISH_LEAD: 3000 s left (it may sign from 2026-11-29T10:00:00.000Z); ` +
        'verifiers may not have fetched it yet: run "sigil keys rotate" again then, or now with --force',
    );
    expect(await states(dir)).toEqual(before);

    const forced = await rotateKeys(store, { publishLead: LEAD, force: true, now: plus(published, 600) });
    expect(forced.current.jwk.kid).toBe(next.jwk.kid);
    expect(forced.retired?.jwk.kid).toBe(first?.jwk.kid);
  });

  it('when no next key exists, rotate publishes one and refuses to promote it until the lead has passed', async () => {
    const [first] = await ensureSigningKey(store);
    const now = at('2026-11-29T09:00:00.000Z');
    const error = await refusal(rotateKeys(store, { publishLead: LEAD, now }));
    expect(error).toBeInstanceOf(KeyChangeRefused);
    const published = (await readKeys(dir)).find((key) => key.state === 'next');
    expect(published?.createdAt).toBe(now.toISOString());
    expect(error.message).toBe(
      `no next key was published: published ${published?.jwk.kid} now, which may sign from 2026-11-29T10:00:00.000Z (KEY_PUBLISH_LEAD 3600 s); ` +
        'run "sigil keys rotate" again then, or now with --force',
    );
    expect(await states(dir)).toEqual({ [first?.jwk.kid ?? '']: 'current', [published?.jwk.kid ?? '']: 'next' });
    // the key published is the one promoted, once it has been published long enough
    expect((await rotateKeys(store, { publishLead: LEAD, now: plus(now, LEAD) })).current.jwk.kid).toBe(published?.jwk.kid);
  });

  it('when no next key exists and --force is given, rotate promotes a fresh key and publishes another as next', async () => {
    const [first] = await ensureSigningKey(store);
    const rotation = await rotateKeys(store, { publishLead: LEAD, force: true });
    expect(new Set([first?.jwk.kid, rotation.current.jwk.kid, rotation.next.jwk.kid]).size).toBe(3);
    expect(Object.values(await states(dir)).sort()).toEqual(['current', 'next', 'retired']);
  });

  it('when a rotation was interrupted (no current key), the due steps and the next start each complete it by promoting the published key', async () => {
    const interrupt = async () => {
      await ensureSigningKey(store);
      const next = await generateKey(store);
      const [current] = (await readKeys(dir)).filter((key) => key.state === 'current');
      // the crash window of a file rotation: current already retired, next not yet promoted
      const file = keyFile(dir, current?.jwk.kid ?? '');
      const raw = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, unknown>;
      await fs.writeFile(file, JSON.stringify({ ...raw, state: 'retired', retired_at: new Date().toISOString() }), { mode: 0o600 });
      return next;
    };
    const next = await interrupt();
    const policy: KeyPolicy = { publishLead: LEAD, rotationInterval: undefined, retention: 4000 };
    expect(dueSteps(await readKeys(dir), policy, new Date())).toEqual([{ step: 'promote', kid: next.jwk.kid, retires: undefined }]);
    const outcome = await store.change((fresh, editor) => applyDueSteps(fresh, editor, policy, new Date(), undefined));
    expect(outcome).toHaveLength(1);
    expect((await ensureSigningKey(store)).find((key) => key.state === 'current')?.jwk.kid).toBe(next.jwk.kid);

    // again, in a fresh directory: an issuer starting on it completes the rotation itself
    await fs.rm(dir, { recursive: true, force: true });
    const again = await interrupt();
    const started = await ensureSigningKey(store);
    expect(started.filter((key) => key.state === 'current').map((key) => key.jwk.kid)).toEqual([again.jwk.kid]);
    expect(Object.values(await states(dir)).sort()).toEqual(['current', 'retired']);
  });

  it('when keys exist but none is current and none is next, the start refuses in one line', async () => {
    const [current] = await ensureSigningKey(store);
    const file = keyFile(dir, current?.jwk.kid ?? '');
    const raw = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, unknown>;
    await fs.writeFile(file, JSON.stringify({ ...raw, state: 'retired', retired_at: new Date().toISOString() }), { mode: 0o600 });
    await expect(ensureSigningKey(store)).rejects.toThrow('must hold exactly one key in state "current" (found 0)');
  });

  it('when asked to retire the current key or an unknown one, refuses: only a rotation replaces the current key', async () => {
    const [current] = await ensureSigningKey(store);
    await expect(retireKey(store, current?.jwk.kid ?? '')).rejects.toThrow(KeyRequestError);
    await expect(retireKey(store, 'no-such-kid')).rejects.toThrow(`no key with kid no-such-kid in KEYS_DIR ${dir}`);
    expect(Object.values(await states(dir))).toEqual(['current']);
  });

  it('when a retired key has outlived every token it signed, the due steps remove it, not a second earlier', async () => {
    await ensureSigningKey(store);
    const retiredAt = at('2026-11-29T10:00:00.000Z');
    const { retired } = await rotateKeys(store, { publishLead: 0, now: retiredAt });
    const policy: KeyPolicy = { publishLead: LEAD, rotationInterval: undefined, retention: 3900 };
    const keys = await readKeys(dir);
    expect(dueSteps(keys, policy, plus(retiredAt, 3899))).toEqual([]);
    expect(dueSteps(keys, policy, plus(retiredAt, 3900))).toEqual([{ step: 'remove', kid: retired?.jwk.kid }]);
    await store.change((fresh, editor) => applyDueSteps(fresh, editor, policy, plus(retiredAt, 3900), undefined));
    expect(Object.values(await states(dir)).sort()).toEqual(['current', 'next']);
  });
});

describe('rotation schedule (dueSteps, nextRotationAt)', () => {
  const INTERVAL = 30 * 86_400;
  const LEAD = 3600;
  const policy: KeyPolicy = { publishLead: LEAD, rotationInterval: INTERVAL, retention: 90_000 };
  const start = at('2026-11-01T00:00:00.000Z');
  const jwk = (kid: string) => ({ kty: 'RSA', kid, alg: 'RS256', use: 'sig', n: 'n', e: 'AQAB', d: 'd', p: 'p', q: 'q', dp: 'dp', dq: 'dq', qi: 'qi' }) as const;
  const current: StoredKey = { jwk: jwk('a'), state: 'current', createdAt: start.toISOString(), activatedAt: start.toISOString(), retiredAt: undefined };
  const next = (publishedAt: Date): StoredKey => ({ jwk: jwk('b'), state: 'next', createdAt: publishedAt.toISOString(), activatedAt: undefined, retiredAt: undefined });

  it('when the current key is one lead short of its interval, a next key is published; not a second earlier', () => {
    expect(dueSteps([current], policy, plus(start, INTERVAL - LEAD - 1))).toEqual([]);
    expect(dueSteps([current], policy, plus(start, INTERVAL - LEAD))).toEqual([{ step: 'publish' }]);
  });

  it('when the interval has passed and the next key has been published for the lead, it is promoted', () => {
    const published = plus(start, INTERVAL - LEAD);
    expect(dueSteps([current, next(published)], policy, plus(start, INTERVAL - 1))).toEqual([]);
    expect(dueSteps([current, next(published)], policy, plus(start, INTERVAL))).toEqual([{ step: 'promote', kid: 'b', retires: 'a' }]);
  });

  it('when a replica was down past the interval, it publishes first and promotes only a lead later (no step doubled, no unseen key promoted)', () => {
    const late = plus(start, INTERVAL * 3);
    expect(dueSteps([current], policy, late)).toEqual([{ step: 'publish' }]);
    expect(dueSteps([current, next(late)], policy, plus(late, LEAD - 1))).toEqual([]);
    expect(dueSteps([current, next(late)], policy, plus(late, LEAD))).toEqual([{ step: 'promote', kid: 'b', retires: 'a' }]);
  });

  it('when no interval is set, nothing but removals is ever due', () => {
    const manual: KeyPolicy = { ...policy, rotationInterval: undefined };
    expect(dueSteps([current], manual, plus(start, INTERVAL * 10))).toEqual([]);
    expect(nextRotationAt([current], manual, start)).toBeUndefined();
  });

  it('says when the current key will be replaced: its interval, or later when the next key still needs its lead', () => {
    expect(nextRotationAt([current], policy, start)).toEqual(plus(start, INTERVAL));
    const late = plus(start, INTERVAL + 60);
    expect(nextRotationAt([current], policy, late)).toEqual(plus(late, LEAD));
    expect(nextRotationAt([current, next(plus(start, INTERVAL - 10))], policy, start)).toEqual(plus(start, INTERVAL - 10 + LEAD));
  });

  it('caps the JWKS max-age at half the lead (and 15 minutes)', () => {
    expect(jwksMaxAge(3600)).toBe(900);
    expect(jwksMaxAge(600)).toBe(300);
    expect(jwksMaxAge(41)).toBe(20);
    expect(jwksMaxAge(0)).toBe(0);
  });
});
