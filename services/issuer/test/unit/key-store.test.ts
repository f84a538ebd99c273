import fs from 'node:fs/promises';
import path from 'node:path';

import { afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { calculateJwkThumbprint } from 'jose';

import { FileKeyStore, keyFile, readKeys } from '../../src/keys/file-store.js';
import { generateRsaKey, KeyStoreError, publicJwk, signingOrder, type PrivateJwk, type StoredKey } from '../../src/keys/key-store.js';
import { ensureSigningKey as ensureIn, generateKey as generateIn } from '../../src/keys/lifecycle.js';
import { temporaryDir } from '../support/backends.js';

const PUBLIC_MEMBERS = ['alg', 'e', 'kid', 'kty', 'n', 'use'];
const PRIVATE_MEMBERS = ['d', 'dp', 'dq', 'p', 'q', 'qi'];

const jsonFiles = async (dir: string) => (await fs.readdir(dir)).filter((name) => name.endsWith('.json')).sort();
const mode = async (file: string) => (await fs.stat(file)).mode & 0o777;

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

describe('file key store', () => {
  let root: string;
  let dir: string;
  const ensureSigningKey = (at: string) => ensureIn(new FileKeyStore(at));
  const generateKey = (at: string) => generateIn(new FileKeyStore(at));
  const fileOf = (key: StoredKey | undefined) => keyFile(dir, key?.jwk.kid ?? '');

  beforeEach(async () => {
    root = await temporaryDir('key-store');
    // not created yet: the store creates it
    dir = path.join(root, 'keys');
  });

  afterEach(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  describe('ensureSigningKey', () => {
    it('when the directory is empty, creates exactly one current RS256 key file, mode 0600, named by its RFC 7638 thumbprint (K3)', async () => {
      const before = Date.now();
      const keys = await ensureSigningKey(dir);
      expect(keys).toHaveLength(1);
      const [key] = keys as [StoredKey];
      expect(key.state).toBe('current');
      expect(key.retiredAt).toBeUndefined();

      const kid = await calculateJwkThumbprint({ kty: 'RSA', n: key.jwk.n, e: key.jwk.e });
      expect(key.jwk.kid).toBe(kid);
      expect(fileOf(key)).toBe(path.join(dir, `${kid}.json`));
      expect(await jsonFiles(dir)).toEqual([`${kid}.json`]);
      expect((await fs.readdir(dir)).filter((name) => name.endsWith('.tmp'))).toEqual([]);
      expect(await mode(fileOf(key))).toBe(0o600);
      expect(await mode(dir)).toBe(0o700);

      const content = JSON.parse(await fs.readFile(fileOf(key), 'utf8')) as Record<string, unknown>;
      expect(Object.keys(content).sort()).toEqual([...PUBLIC_MEMBERS, ...PRIVATE_MEMBERS, 'created_at', 'activated_at', 'state'].sort());
      expect(content).toMatchObject({ kty: 'RSA', kid, alg: 'RS256', use: 'sig', e: 'AQAB', state: 'current' });
      for (const member of PRIVATE_MEMBERS) expect(content[member]).toMatch(/^[A-Za-z0-9_-]+$/u);
      // RSA-2048: a 256-byte modulus
      expect(Buffer.from(key.jwk.n, 'base64url')).toHaveLength(256);
      const createdAt = Date.parse(String(content['created_at']));
      expect(createdAt).toBeGreaterThanOrEqual(before - 1000);
      expect(createdAt).toBeLessThanOrEqual(Date.now());
      expect(content['created_at']).toBe(key.createdAt);
      // it signs from its creation
      expect(content['activated_at']).toBe(key.createdAt);
    });

    it('when a current key exists, a second call returns the same key and writes nothing', async () => {
      const [first] = await ensureSigningKey(dir);
      const bytes = await fs.readFile(fileOf(first));
      const again = await ensureSigningKey(dir);
      expect(again).toEqual([first]);
      expect(await jsonFiles(dir)).toEqual([`${first?.jwk.kid}.json`]);
      expect(await fs.readFile(fileOf(first))).toEqual(bytes);
    });
  });

  describe('generateKey', () => {
    it('when a current key exists, adds a next key and refuses a second next key (KeyStoreError)', async () => {
      const [current] = await ensureSigningKey(dir);
      const next = await generateKey(dir);
      expect(next.state).toBe('next');
      expect(next.jwk.kid).not.toBe(current?.jwk.kid);
      expect(next.jwk.kid).toBe(await calculateJwkThumbprint({ kty: 'RSA', n: next.jwk.n, e: next.jwk.e }));
      expect(await mode(fileOf(next))).toBe(0o600);
      expect(await jsonFiles(dir)).toEqual([`${current?.jwk.kid}.json`, `${next.jwk.kid}.json`].sort());

      const error = await rejection(generateKey(dir));
      expect(error).toBeInstanceOf(KeyStoreError);
      expect(error.message).toBe(`a next key already exists (${next.jwk.kid}); rotate before generating another`);
      expect(await jsonFiles(dir)).toHaveLength(2);
      expect(Object.fromEntries((await readKeys(dir)).map((key) => [key.jwk.kid, key.state]))).toEqual({
        [current?.jwk.kid ?? '']: 'current',
        [next.jwk.kid]: 'next',
      });
    });
  });

  describe('readKeys', () => {
    it('when the directory does not exist, returns no keys', async () => {
      expect(await readKeys(path.join(root, 'missing'))).toEqual([]);
    });

    it('when a key file is readable by others (0644), refuses it and says to chmod 600 (K3)', async () => {
      const [key] = await ensureSigningKey(dir);
      const file = fileOf(key);
      await fs.chmod(file, 0o644);
      const error = await rejection(readKeys(dir));
      expect(error).toBeInstanceOf(KeyStoreError);
      expect(error.message).toBe(`${file} is readable by other users (mode 644); run: chmod 600 ${file}`);
      expect(error.message).toContain('chmod 600');
      // the issuer's start-up path refuses it too
      await expect(ensureSigningKey(dir)).rejects.toThrow(error.message);
    });

    it('when a key file is not JSON, refuses it', async () => {
      await ensureSigningKey(dir);
      const file = path.join(dir, 'broken.json');
      await fs.writeFile(file, '{"kty": "RSA", ', { mode: 0o600 });
      const error = await rejection(readKeys(dir));
      expect(error).toBeInstanceOf(KeyStoreError);
      expect(error.message).toBe(`${file} is not a valid Sigil key file (an RS256 private JWK with state)`);
    });

    it('when a key file holds a public key only (no d), refuses it', async () => {
      const [key] = await ensureSigningKey(dir);
      const content = JSON.parse(await fs.readFile(fileOf(key), 'utf8')) as Record<string, unknown>;
      const { d: _d, ...withoutD } = content;
      await fs.writeFile(fileOf(key), JSON.stringify(withoutD), { mode: 0o600 });
      await expect(readKeys(dir)).rejects.toThrow(`${fileOf(key)} is not a valid Sigil key file (an RS256 private JWK with state)`);
    });

    it("when a key file's kid is not its thumbprint, refuses it", async () => {
      const [key] = await ensureSigningKey(dir);
      const content = JSON.parse(await fs.readFile(fileOf(key), 'utf8')) as Record<string, unknown>;
      const file = path.join(dir, 'wrong-kid.json');
      await fs.writeFile(file, JSON.stringify({ ...content, kid: 'wrong-kid' }), { mode: 0o600 });
      await fs.rm(fileOf(key));
      const error = await rejection(readKeys(dir));
      expect(error).toBeInstanceOf(KeyStoreError);
      expect(error.message).toBe(`${file}: kid does not match the key's RFC 7638 thumbprint`);
    });

    it('when the directory holds other files, only <name>.json files are read', async () => {
      const [key] = await ensureSigningKey(dir);
      await fs.writeFile(path.join(dir, 'README.md'), 'keys live here\n', { mode: 0o644 });
      await fs.writeFile(path.join(dir, 'notes.txt'), '{', { mode: 0o644 });
      expect((await readKeys(dir)).map((stored) => stored.jwk.kid)).toEqual([key?.jwk.kid]);
    });
  });

  describe('signingOrder and publicJwk', () => {
    let jwk: PrivateJwk;

    beforeAll(async () => {
      jwk = await generateRsaKey();
    });

    const stored = (kid: string, state: StoredKey['state'], createdAt: string): StoredKey => ({
      jwk: { ...jwk, kid },
      state,
      createdAt,
      activatedAt: state === 'next' ? undefined : createdAt,
      retiredAt: state === 'retired' ? '2026-11-01T00:00:00.000Z' : undefined,
    });

    it('when keys are in any order, puts current first, then next, then retired (oldest first within a state)', () => {
      const keys = [
        stored('retired-new', 'retired', '2026-10-01T00:00:00.000Z'),
        stored('next', 'next', '2026-11-02T00:00:00.000Z'),
        stored('retired-old', 'retired', '2026-09-01T00:00:00.000Z'),
        stored('current', 'current', '2026-11-01T00:00:00.000Z'),
      ];
      const snapshot = keys.map((key) => key.jwk.kid);
      expect(signingOrder(keys).map((key) => key.jwk.kid)).toEqual(['current', 'next', 'retired-old', 'retired-new']);
      // the input is left as it was
      expect(keys.map((key) => key.jwk.kid)).toEqual(snapshot);
    });

    it('when a private key is published, only kty, kid, alg, use, n and e remain (K3)', () => {
      const published = publicJwk(jwk);
      expect(Object.keys(published).sort()).toEqual(PUBLIC_MEMBERS);
      expect(published).toEqual({ kty: 'RSA', kid: jwk.kid, alg: 'RS256', use: 'sig', n: jwk.n, e: jwk.e });
    });
  });
});
