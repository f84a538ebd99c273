import { createLocalJWKSet, errors as jose, jwtVerify, type JSONWebKeySet } from 'jose';
import { errors, type Client, type Configuration } from 'oidc-provider';

import { CLIENT_ASSERTION_ALGORITHMS, usablePublicKeys } from '../domain/client-keys.js';
import type { ClientJwksFetcher } from './client-jwks.js';

/**
 * Client assertions of `private_key_jwt` clients (RFC 7523 §2.2 and §3, OpenID Connect Core
 * §9): a JWT the client signs with one of its keys, `iss` and `sub` its client id, `aud` the
 * issuer or the endpoint, with an `exp` and a `jti` used once. The engine verifies them on its
 * endpoints (token, introspection, revocation); {@link verifyClientAssertion} does the same for
 * Sigil's own revocation feed, with the rules below shared by both.
 */

/** RFC 7523 §3 item 7's JWT ID is remembered until `exp`: an assertion may live this long at most (seconds from now). */
export const MAX_ASSERTION_LIFETIME_S = 300;

/** The engine's clock tolerance (`clockTolerance`, its default), which Sigil's own checks use too. */
export const CLOCK_TOLERANCE_S = 15;

/** `urn:ietf:params:oauth:client-assertion-type:jwt-bearer` (RFC 7523 §2.2). */
export const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/**
 * Why the assertion's `exp` is not short, if it is not: it must come at most
 * MAX_ASSERTION_LIFETIME_S (plus the clock tolerance) from now. RFC 7523 sets no bound; this
 * one keeps the window a stolen assertion is good for short, and the replay rows few.
 */
export function lifetimeProblem(exp: unknown, nowSeconds = Math.floor(Date.now() / 1000)): string | undefined {
  if (typeof exp !== 'number' || !Number.isFinite(exp)) return 'the client assertion needs a numeric exp';
  const lifetime = exp - nowSeconds;
  return lifetime > MAX_ASSERTION_LIFETIME_S + CLOCK_TOLERANCE_S
    ? `the client assertion expires in ${Math.round(lifetime)} s: at most ${MAX_ASSERTION_LIFETIME_S} s from now`
    : undefined;
}

/**
 * The engine's hook after it verified a client assertion's signature and claims
 * (`assertJwtClientAuthClaimsAndHeader`, `lib/shared/jwt_client_auth.js`): Sigil's lifetime
 * bound. The engine has no setting for it; it requires `exp` but accepts any.
 */
export const assertShortLived: NonNullable<Configuration['assertJwtClientAuthClaimsAndHeader']> = (_ctx, claims) => {
  const problem = lifetimeProblem(claims['exp']);
  if (problem !== undefined) throw new errors.InvalidClientAuth(problem);
};

export interface AssertionContext {
  /** Audiences the assertion may name (RFC 7523 §3 item 3): the issuer, the token endpoint, the endpoint it is sent to. */
  readonly audiences: readonly string[];
  readonly jwks: ClientJwksFetcher;
  /** The engine's replay detection: true the first time an `iss` and `jti` are seen until `exp` (epoch seconds). */
  readonly unique: (iss: string, jti: string, exp: number) => Promise<boolean>;
}

/** The JWK Set to verify `client`'s assertions with: its inline keys, or its jwks_uri's (fetched again when `refetch`). */
async function keysOf(client: Client, jwks: ClientJwksFetcher, refetch: boolean): Promise<JSONWebKeySet> {
  const keys = client.jwksUri === undefined ? client.jwks?.keys ?? [] : (await jwks.keySet(client.jwksUri, { refetch })).keys;
  return { keys: usablePublicKeys(keys) as JSONWebKeySet['keys'] };
}

/** A failure a fresh copy of the client's jwks_uri might cure: no key with that kid, or none that verifies. */
const keyMissing = (error: unknown) => error instanceof jose.JWKSNoMatchingKey || error instanceof jose.JWSSignatureVerificationFailed;

/**
 * Whether `assertion` authenticates `client` (registered for private_key_jwt), by the rules
 * the engine applies on its endpoints: an allowed asymmetric algorithm, a signature by one of
 * the client's keys (its jwks_uri fetched again, at most once per refetch floor, for a missing
 * kid), `iss` and `sub` the client id, an allowed audience, `exp` not past and short, and a
 * `jti` not seen before (remembered until `exp`).
 */
export async function verifyClientAssertion(assertion: string, client: Client, context: AssertionContext): Promise<boolean> {
  if (client.clientAuthMethod !== 'private_key_jwt') return false;
  const options = {
    algorithms: [...CLIENT_ASSERTION_ALGORITHMS],
    issuer: client.clientId,
    subject: client.clientId,
    audience: [...context.audiences],
    requiredClaims: ['exp', 'jti'],
    clockTolerance: CLOCK_TOLERANCE_S,
  };
  let payload: { exp?: number; jti?: string };
  try {
    try {
      ({ payload } = await jwtVerify(assertion, createLocalJWKSet(await keysOf(client, context.jwks, false)), options));
    } catch (error) {
      if (client.jwksUri === undefined || !keyMissing(error)) throw error;
      ({ payload } = await jwtVerify(assertion, createLocalJWKSet(await keysOf(client, context.jwks, true)), options));
    }
  } catch {
    return false;
  }
  if (lifetimeProblem(payload.exp) !== undefined || typeof payload.jti !== 'string') return false;
  return context.unique(client.clientId, payload.jti, (payload.exp ?? 0) + CLOCK_TOLERANCE_S);
}
