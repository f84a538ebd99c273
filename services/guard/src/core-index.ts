/**
 * `@sigil/guard/core`: the guard without any framework (no express or Fastify type or module):
 * `createCoreGuard`, its plain-data API (`decide`, `authenticateRequest`), and the parts it is
 * made of. The main entry adds the express middleware; `@sigil/guard/fastify` the Fastify plugin.
 */
export { createApiKeyResolver, type ApiKeyResolver, type ApiKeyResolverOptions } from './api-key.js';
export {
  refusalOf,
  type Accepted,
  type DpopChallenge,
  type GuardLogger,
  type GuardRequest,
  type GuardStats,
  type Refusal,
  type Requirements,
} from './core.js';
export { bearerToken, dpopToken, type Credentials, type DpopCredentials, type RequestHeaders } from './credentials.js';
export { createDpopProofVerifier, DEFAULT_DPOP_ALGORITHMS, type DpopOptions, type DpopProofVerifier, type DpopRequest } from './dpop-proof.js';
export { DpopNonces, type DpopNonceOptions } from './dpop-nonce.js';
export { DpopReplayCache, type DpopReplayCacheOptions, type DpopReplayStore } from './dpop-replay-cache.js';
export { issuerMetadata, type IssuerMetadata, type IssuerMetadataOptions } from './discovery.js';
export {
  CredentialsMissing,
  GuardError,
  InsufficientRole,
  InsufficientScope,
  InvalidDpopProof,
  InvalidRequest,
  InvalidToken,
  IssuerMetadataRefused,
  UseDpopNonce,
  VerifierUnavailable,
  type GuardErrorCode,
} from './errors.js';
export { createCoreGuard, type CoreGuard, type GuardOptions } from './guard.js';
export { JwksCache, type JwksCacheOptions } from './jwks-cache.js';
export type { Principal, PrincipalKind } from './principal.js';
export { actorChain, type Actor } from './principal.js';
export { RevocationFeed, type RevocableClaims, type RevocationFeedOptions } from './revocation-feed.js';
export {
  createAccessTokenVerifier,
  type AccessTokenVerifier,
  type AccessTokenVerifierOptions,
  type RevocationList,
} from './verify-access-token.js';
