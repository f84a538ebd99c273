import fs from 'node:fs/promises';

import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';

import {
  ensureSigningKey,
  generateKey,
  KeyRequestError,
  readKeys,
  removeExpiredKeys,
  retireKey,
  rotateKeys,
} from '../../src/keys/key-store.js';
import { temporaryDir } from '../support/backends.js';

const states = async (dir: string) =>
  Object.fromEntries((await readKeys(dir)).map((key) => [key.jwk.kid, key.state]));

describe('key lifecycle', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await temporaryDir('keys');
  });

  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('when a next key exists, rotate promotes it, retires current and publishes a new next', async () => {
    const [first] = await ensureSigningKey(dir);
    const next = await generateKey(dir);
    const now = new Date('2026-11-29T10:00:00.000Z');
    const rotation = await rotateKeys(dir, now);
    expect(rotation.current.jwk.kid).toBe(next.jwk.kid);
    expect(rotation.retired?.jwk.kid).toBe(first?.jwk.kid);
    expect(rotation.retired?.retiredAt).toBe(now.toISOString());
    expect(await states(dir)).toEqual({
      [first?.jwk.kid ?? '']: 'retired',
      [next.jwk.kid]: 'current',
      [rotation.next.jwk.kid]: 'next',
    });
  });

  it('when no next key exists, rotate creates one to promote and another as next', async () => {
    const [first] = await ensureSigningKey(dir);
    const rotation = await rotateKeys(dir);
    expect(new Set([first?.jwk.kid, rotation.current.jwk.kid, rotation.next.jwk.kid]).size).toBe(3);
    expect(Object.values(await states(dir)).sort()).toEqual(['current', 'next', 'retired']);
  });

  it('when a rotation was interrupted (no current key), running rotate again completes it', async () => {
    await ensureSigningKey(dir);
    const next = await generateKey(dir);
    const [current] = (await readKeys(dir)).filter((key) => key.state === 'current');
    // simulate the crash window: current already retired, next not yet promoted
    const raw = JSON.parse(await fs.readFile(current?.file ?? '', 'utf8')) as Record<string, unknown>;
    await fs.writeFile(current?.file ?? '', JSON.stringify({ ...raw, state: 'retired', retired_at: new Date().toISOString() }), { mode: 0o600 });
    await expect(ensureSigningKey(dir)).rejects.toThrow('must hold exactly one key in state "current" (found 0)');
    const rotation = await rotateKeys(dir);
    expect(rotation.current.jwk.kid).toBe(next.jwk.kid);
    expect(Object.values(await states(dir)).filter((state) => state === 'current')).toHaveLength(1);
    expect((await ensureSigningKey(dir)).find((key) => key.state === 'current')?.jwk.kid).toBe(rotation.current.jwk.kid);
  });

  it('when asked to retire the current key, refuses: only a rotation replaces it', async () => {
    const [current] = await ensureSigningKey(dir);
    await expect(retireKey(dir, current?.jwk.kid ?? '')).rejects.toThrow(KeyRequestError);
    await expect(retireKey(dir, 'no-such-kid')).rejects.toThrow(`no key with kid no-such-kid in ${dir}`);
    expect(Object.values(await states(dir))).toEqual(['current']);
  });

  it('removes a retired key only once every token it signed has expired', async () => {
    await ensureSigningKey(dir);
    const retiredAt = new Date('2026-11-29T10:00:00.000Z');
    const { retired } = await rotateKeys(dir, retiredAt);
    const retention = 3600 + 300;
    expect(await removeExpiredKeys(dir, retention, new Date(retiredAt.getTime() + (retention - 1) * 1000))).toEqual([]);
    expect(await removeExpiredKeys(dir, retention, new Date(retiredAt.getTime() + retention * 1000))).toEqual([retired?.jwk.kid]);
    expect(Object.values(await states(dir)).sort()).toEqual(['current', 'next']);
  });
});
