import { createHash } from 'node:crypto';

import { describe, expect, it } from '@jest/globals';

import { generateId, generateSecret, hashSecret, secretMatches } from '../../src/domain/secrets.js';

describe('secrets (K2)', () => {
  it('when a secret is generated, it is 43 base64url characters carrying 256 bits', () => {
    const secret = generateSecret();
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/u);
    const bytes = Buffer.from(secret, 'base64url');
    expect(bytes).toHaveLength(32);
    expect(bytes.toString('base64url')).toBe(secret);
  });

  it('when secrets are generated repeatedly, each one differs', () => {
    const secrets = Array.from({ length: 200 }, () => generateSecret());
    expect(new Set(secrets).size).toBe(200);
  });

  it('when an id is generated, it is 32 lower-case hex characters (128 bits) and differs each time', () => {
    const ids = Array.from({ length: 100 }, () => generateId());
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{32}$/u);
    expect(new Set(ids).size).toBe(100);
  });

  it('when a secret is hashed, the result is its SHA-256 digest in lower-case hex', () => {
    // FIPS 180-2 test vectors
    expect(hashSecret('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(hashSecret('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    const secret = generateSecret();
    expect(hashSecret(secret)).toBe(createHash('sha256').update(secret).digest('hex'));
    expect(hashSecret(secret)).not.toContain(secret);
  });

  it('when the presented secret is the one stored, it matches', () => {
    const secret = generateSecret();
    expect(secretMatches(secret, hashSecret(secret))).toBe(true);
  });

  it.each([
    ['a different secret', (secret: string) => [generateSecret(), hashSecret(secret)]],
    ['the secret with one more character', (secret: string) => [`${secret}x`, hashSecret(secret)]],
    ['the stored digest itself', (secret: string) => [hashSecret(secret), hashSecret(secret)]],
    ['an empty presented secret', (secret: string) => ['', hashSecret(secret)]],
  ])('when the presented value is %s, it does not match', (_case, values) => {
    const [presented, stored] = values(generateSecret()) as [string, string];
    expect(secretMatches(presented, stored)).toBe(false);
  });

  it.each([
    ['a truncated digest', (digest: string) => digest.slice(0, 62)],
    ['a longer digest', (digest: string) => `${digest}00`],
    ['an empty digest', () => ''],
    ['a non-hex value', () => 'z'.repeat(64)],
  ])('when the stored hash is %s, it does not match and does not throw', (_case, stored) => {
    const secret = generateSecret();
    expect(secretMatches(secret, stored(hashSecret(secret)))).toBe(false);
  });
});
