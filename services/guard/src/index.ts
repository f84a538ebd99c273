export { createApiKeyResolver, type ApiKeyResolver, type ApiKeyResolverOptions } from './api-key.js';
export { bearerToken, dpopToken, requestUrl, type Credentials, type DpopCredentials } from './credentials.js';
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
export { createGuard, type Guard, type GuardOptions } from './guard.js';
export { JwksCache, type JwksCacheOptions } from './jwks-cache.js';
export type { GuardLogger, GuardMiddleware, RequireAuthOptions } from './middleware.js';
export type { Principal, PrincipalKind } from './principal.js';
export { actorChain, type Actor } from './principal.js';
export { writeErrorResponse, writeRefusal, type DpopChallenge } from './refusal.js';
export { RevocationFeed, type RevocableClaims, type RevocationFeedOptions } from './revocation-feed.js';
export {
  createAccessTokenVerifier,
  type AccessTokenVerifier,
  type AccessTokenVerifierOptions,
  type RevocationList,
} from './verify-access-token.js';
