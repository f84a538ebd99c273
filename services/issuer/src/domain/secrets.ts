import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** 256 bits from the CSPRNG, base64url (43 characters). */
export function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** A random identifier of 128 bits, lower-case hex: safe in URLs, headers and shell arguments. */
export function generateId(): string {
  return randomBytes(16).toString('hex');
}

/**
 * SHA-256 of a server-generated secret, hex. A fast hash is right here: the secret has
 * 256 bits of entropy, so there is nothing for a slow hash to protect, and a fast one keeps client
 * authentication cheap (docs/security.md#secrets-at-rest, K2).
 */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Compares a presented secret with a stored digest in constant time. */
export function secretMatches(presented: string, storedHash: string): boolean {
  const expected = Buffer.from(storedHash, 'hex');
  const actual = createHash('sha256').update(presented, 'utf8').digest();
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}
