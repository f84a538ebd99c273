import { createPublicKey, type JsonWebKey as NodeJwk } from 'node:crypto';

import { z } from 'zod';

import { isLoopbackHost } from './validation.js';

/**
 * The public keys a `private_key_jwt` client (RFC 7523 §2.2, OpenID Connect Core §9) signs
 * its client assertions with, as an administrator registers them: a JWK Set (RFC 7517 §5) of
 * public asymmetric signing keys, or the URL where the client publishes one.
 */

/**
 * JWS algorithms a client assertion may be signed with (RFC 7518 §3, RFC 8037, RFC 9864's
 * `Ed25519`): asymmetric only, so never an HMAC (Sigil keeps secrets as digests, which cannot
 * key one) and never `none`. Discovery lists them as `token_endpoint_auth_signing_alg_values_supported`.
 */
export const CLIENT_ASSERTION_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'Ed25519', 'EdDSA'] as const;
export type ClientAssertionAlgorithm = (typeof CLIENT_ASSERTION_ALGORITHMS)[number];

/** Most keys in a registered key set: the one in use, the next one and a spare cover every rotation. */
export const MAX_CLIENT_KEYS = 5;

/** RSA moduli below this are refused (RFC 7518 §3.3: 2048 bits or larger). */
const MIN_RSA_BITS = 2048;

/** A public signing key as Sigil stores it: only the members that describe the public key. */
export type PublicJwk = {
  readonly kty: 'RSA' | 'EC' | 'OKP';
  readonly kid: string;
  readonly use?: 'sig';
  readonly alg?: ClientAssertionAlgorithm;
  readonly key_ops?: readonly string[];
  readonly n?: string;
  readonly e?: string;
  readonly crv?: 'P-256' | 'Ed25519';
  readonly x?: string;
  readonly y?: string;
};

export interface ClientKeySet {
  readonly keys: readonly PublicJwk[];
}

/** Members that only a private or a symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1; RFC 8037 §2). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

/** The algorithms each kind of key can verify. */
const ALGORITHMS_OF: Readonly<Record<string, readonly ClientAssertionAlgorithm[]>> = {
  RSA: ['RS256', 'PS256'],
  'EC:P-256': ['ES256'],
  'OKP:Ed25519': ['Ed25519', 'EdDSA'],
};

/** The members of each kind of key, beside `kty`, `kid`, `use`, `alg` and `key_ops`. */
const PUBLIC_MEMBERS: Readonly<Record<string, readonly ('n' | 'e' | 'crv' | 'x' | 'y')[]>> = {
  RSA: ['n', 'e'],
  EC: ['crv', 'x', 'y'],
  OKP: ['crv', 'x'],
};

const BASE64URL = /^[A-Za-z0-9_-]+$/u;
/** A kid is printed in views and logs: printable ASCII only. */
const KID = /^[\x21-\x7e]{1,200}$/u;

const KEYS_RULE = `the key set (--jwks-file) is a JWK Set: {"keys": [...]} with 1 to ${MAX_CLIENT_KEYS} public keys`;

/** Why `jwk` cannot be a client's verification key, or its public form. */
function publicKey(jwk: Record<string, unknown>): { readonly problem: string } | { readonly key: PublicJwk } {
  const present = PRIVATE_MEMBERS.filter((member) => jwk[member] !== undefined);
  if (jwk['kty'] === 'oct' || jwk['k'] !== undefined) return { problem: 'is a symmetric key (kty oct): private_key_jwt needs public asymmetric keys' };
  if (present.length > 0) return { problem: `holds private key members (${present.join(', ')}): give the public keys only, never the private ones` };
  const { kty, kid, use, alg, crv } = jwk;
  if (typeof kid !== 'string' || !KID.test(kid)) return { problem: 'needs a kid (1 to 200 printable ASCII characters)' };
  const kind = kty === 'RSA' ? 'RSA' : typeof crv === 'string' ? `${String(kty)}:${crv}` : String(kty);
  const algorithms = ALGORITHMS_OF[kind];
  const label = kind.replace(':', ' ');
  if (algorithms === undefined) return { problem: `is ${String(kty)}${typeof crv === 'string' ? ` ${crv}` : ''}: a key is RSA, EC P-256 or OKP Ed25519` };
  if (alg !== undefined && !algorithms.includes(alg as ClientAssertionAlgorithm)) {
    return { problem: `has alg ${String(alg)}: ${label} keys sign with ${algorithms.join(' or ')} (allowed: ${CLIENT_ASSERTION_ALGORITHMS.join(', ')})` };
  }
  if (use !== undefined && use !== 'sig') return { problem: `has use ${String(use)}: a client's key verifies signatures (use sig)` };
  const keyOps = jwk['key_ops'];
  if (keyOps !== undefined && !(Array.isArray(keyOps) && keyOps.every((op) => typeof op === 'string') && keyOps.includes('verify'))) {
    return { problem: 'has key_ops without verify: a client\'s key verifies signatures' };
  }
  const members = PUBLIC_MEMBERS[String(kty)] ?? [];
  const key: Record<string, unknown> = { kty, kid };
  for (const member of members) {
    const value = jwk[member];
    if (typeof value !== 'string' || (member !== 'crv' && !BASE64URL.test(value))) return { problem: `needs ${member} (base64url) for a ${String(kty)} key` };
    key[member] = value;
  }
  try {
    const imported = createPublicKey({ key: key as NodeJwk, format: 'jwk' });
    const bits = imported.asymmetricKeyDetails?.modulusLength;
    if (kty === 'RSA' && (bits === undefined || bits < MIN_RSA_BITS)) return { problem: `is an RSA key of ${String(bits)} bits: at least ${MIN_RSA_BITS}` };
  } catch {
    return { problem: `is not a valid ${label} public key` };
  }
  return {
    key: {
      ...(key as unknown as PublicJwk),
      ...(use === undefined ? {} : { use: 'sig' }),
      ...(alg === undefined ? {} : { alg: alg as ClientAssertionAlgorithm }),
      ...(keyOps === undefined ? {} : { key_ops: [...(keyOps as string[])] }),
    },
  };
}

/**
 * The keys of a fetched key set (a client's jwks_uri) that Sigil verifies with: those that
 * pass the rules of a registered key; the others are left out, not refused, as another
 * party's key set may hold keys for other uses.
 */
export function usablePublicKeys(keys: readonly unknown[]): PublicJwk[] {
  return keys.flatMap((jwk) => {
    if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) return [];
    const checked = publicKey(jwk as Record<string, unknown>);
    return 'key' in checked ? [checked.key] : [];
  });
}

/**
 * A client's inline key set (`--jwks-file`, the admin API's `jwks`): 1 to MAX_CLIENT_KEYS public
 * RSA (2048 bits or more), EC P-256 or Ed25519 keys, each with its own kid, none holding a
 * private member; stored with only their public members (an `x5c` chain, say, is dropped).
 */
export const clientJwksSchema = z
  .object(
    {
      keys: z
        .array(z.record(z.string(), z.unknown(), { error: 'a key is a JSON object (a JWK)' }), { error: KEYS_RULE })
        .min(1, KEYS_RULE)
        .max(MAX_CLIENT_KEYS, `at most ${MAX_CLIENT_KEYS} keys (the one in use and the next ones)`)
        .readonly(),
    },
    { error: KEYS_RULE },
  )
  .transform((set, ctx): ClientKeySet => {
    const keys: PublicJwk[] = [];
    const kids = new Set<string>();
    for (const [index, jwk] of set.keys.entries()) {
      const checked = publicKey(jwk);
      if ('problem' in checked) {
        ctx.addIssue({ code: 'custom', path: ['keys', index], message: `this key ${checked.problem}` });
        continue;
      }
      if (kids.has(checked.key.kid)) ctx.addIssue({ code: 'custom', path: ['keys', index], message: `kid ${checked.key.kid} is used twice: each key needs its own` });
      kids.add(checked.key.kid);
      keys.push(checked.key);
    }
    return { keys };
  });

/**
 * Where a client publishes its key set (`--jwks-uri`): https, or http on a loopback host (a
 * client on the issuer's own machine), without credentials or a fragment.
 */
export const clientJwksUri = z.string().refine((value) => {
  const url = URL.parse(value);
  if (url === null || url.hash !== '' || value.includes('#') || url.username !== '' || url.password !== '' || url.href.length > 2000) return false;
  return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname));
}, '--jwks-uri must be https (or http on localhost, 127.0.0.1 or [::1]), without credentials or a fragment');

/** Whether a URL may be fetched as a client's jwks_uri (the rule of {@link clientJwksUri}, checked again before every fetch). */
export function isFetchableJwksUri(value: string): boolean {
  return clientJwksUri.safeParse(value).success;
}
