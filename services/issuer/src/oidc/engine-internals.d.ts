/*
 * The engine's grant helpers that Sigil's own grants call, as its built-in grants do (they are
 * handed them bound; a grant registered with `registerGrantType` is not). The package has no
 * `exports` map, so these paths are importable; their contracts are described in
 * docs/engine.md#dpop-at-the-token-endpoint. Read them again on an engine upgrade.
 */

declare module 'oidc-provider/lib/helpers/grants.js' {
  import type Provider from 'oidc-provider';
  import type { AccessToken, ClientCredentials, KoaContextWithOIDC, RefreshToken } from 'oidc-provider';

  /** A verified DPoP proof (RFC 9449 §4.3): its key's RFC 7638 thumbprint, its `jti` and `iat`. */
  export interface DpopProof {
    readonly thumbprint: string;
    readonly jti: string;
    readonly iat: number;
  }

  /**
   * Verifies the request's `DPoP` header (`typ`, algorithm, embedded public key, `htm`, `htu`
   * against the engine's own URL, `iat` window, nonce), once per request.
   * @returns undefined without a `DPoP` header
   * @throws the engine's InvalidDpopProof (400 invalid_dpop_proof) or UseDpopNonce
   */
  export function validateDpop(provider: Provider, ctx: KoaContextWithOIDC): Promise<DpopProof | undefined>;
  /** @throws InvalidGrant when the client is registered `dpop_bound_access_tokens` and there is no proof */
  export function checkDpopRequired(provider: Provider, ctx: KoaContextWithOIDC, proof: DpopProof | undefined): void;
  /**
   * Records the proof's `jti` for `clientId` through `ReplayDetection.unique` (once per request).
   * @throws InvalidGrant ("DPoP proof JWT Replay detected") when it was seen before
   */
  export function checkDpopReplay(provider: Provider, ctx: KoaContextWithOIDC, proof: DpopProof | undefined, clientId: string): Promise<void>;
  /** Binds a public client's refresh token to its access token's key (RFC 9449 §5). */
  export function applyRefreshTokenBindings(provider: Provider, ctx: KoaContextWithOIDC, accessToken: AccessToken | ClientCredentials, refreshToken: RefreshToken): Promise<void>;
}

/*
 * The engine's per-provider internal state. Sigil reads one entry: the response modes, a map
 * that `registerResponseMode` only ever adds to (it ignores a name already there, and the
 * constructor has registered the built-in modes by then), so replacing a built-in mode's renderer
 * means setting the entry itself (oidc/form-post.ts). Read again on an engine upgrade.
 */
declare module 'oidc-provider/lib/helpers/weak_cache.js' {
  import type Provider from 'oidc-provider';
  import type { KoaContextWithOIDC } from 'oidc-provider';

  /**
   * Answers an authorization request (`payload`: `code`, `state`, `iss`, or `error`…) at
   * `redirectUri`, which the engine has already matched against the client's registration.
   * Called with the provider as `this`; awaited.
   */
  export type ResponseModeHandler = (ctx: KoaContextWithOIDC, redirectUri: string, payload: Readonly<Record<string, unknown>>) => void | Promise<void>;

  export default function instance(provider: Provider): { readonly responseModes: Map<string, ResponseModeHandler> };
}
