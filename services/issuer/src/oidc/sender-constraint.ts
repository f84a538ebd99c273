import type Provider from 'oidc-provider';
import { errors, type AccessToken, type KoaContextWithOIDC, type RefreshToken } from 'oidc-provider';
import { applyRefreshTokenBindings, checkDpopReplay, checkDpopRequired, validateDpop, type DpopProof } from 'oidc-provider/lib/helpers/grants.js';

export type { DpopProof };

/**
 * DPoP (RFC 9449) for Sigil's own grants, with the engine's own helpers (the ones its built-in
 * grants are handed: `lib/helpers/grants.js`), so that a proof is verified, replay-detected and
 * bound exactly as at its grants (`lib/actions/grants/client_credentials.js`):
 *
 * 1. {@link dpopProof} before any other work: a bad proof is refused (`invalid_dpop_proof`),
 *    and so is a request without one from a client registered `--require-dpop`.
 * 2. {@link refuseReplayedProof}: the proof's `jti` is recorded (a replay is `invalid_grant`).
 * 3. {@link bindToProofKey}: the access token gets `cnf.jkt` (and `token_type` `DPoP`), and
 *    {@link bindRefreshToken} binds a public client's refresh token to the same key (RFC 9449 §5).
 *
 * The engine's grants require the proof and record its `jti` only once the token is built. A
 * grant that checks a password must do both before it, or its answer would tell a right password
 * from a wrong one to whoever replays a proof or sends none.
 */
export async function dpopProof(provider: Provider, ctx: KoaContextWithOIDC): Promise<DpopProof | undefined> {
  const proof = await validateDpop(provider, ctx);
  checkDpopRequired(provider, ctx, proof);
  return proof;
}

/** Step 2 above; nothing without a proof. */
export async function refuseReplayedProof(provider: Provider, ctx: KoaContextWithOIDC, proof: DpopProof | undefined): Promise<void> {
  const client = ctx.oidc.client;
  if (client === undefined) throw new errors.InvalidClient('client not found');
  await checkDpopReplay(provider, ctx, proof, client.clientId);
}

/** Step 3 above: the token is bound to the proof's key (RFC 9449 §6.1); nothing without a proof. */
export function bindToProofKey(token: AccessToken, proof: DpopProof | undefined): void {
  if (proof !== undefined) token.setThumbprint('jkt', proof.thumbprint);
}

/** Step 3 above, for the refresh token issued with `accessToken`. */
export function bindRefreshToken(provider: Provider, ctx: KoaContextWithOIDC, accessToken: AccessToken, refreshToken: RefreshToken): Promise<void> {
  return applyRefreshTokenBindings(provider, ctx, accessToken, refreshToken);
}
