import { createLocalJWKSet, jwtVerify } from 'jose';
import type { Client, KoaContextWithOIDC } from 'oidc-provider';

import type { RevocationStore } from '../domain/revocations.js';
import { publicJwk, type PrivateJwk } from '../keys/key-store.js';
import type { KoaMiddleware } from './koa.js';
import { routes } from './routes.js';

/**
 * Token revocation (RFC 7009 §2.1): a client may revoke only the tokens issued to it. The
 * engine revokes stored tokens (refresh tokens); a revoked refresh token takes its grant, and
 * so every access token of that grant, with it (recorded ended: storage/payloads.ts).
 */
export function revocationAllowed(client: Client, token: { readonly clientId?: string | undefined }): boolean {
  return token.clientId === client.clientId;
}

export interface RevocationDependencies {
  readonly issuer: string;
  readonly signingKeys: readonly PrivateJwk[];
  readonly revocations: RevocationStore;
}

/**
 * RFC 7009 revocation of JWT access tokens, which the engine refuses (`unsupported_token_type`:
 * it never stores them, docs/engine.md#jwt-access-tokens-are-not-stored). The engine has
 * already parsed the request and authenticated the client; this replaces its refusal with
 * RFC 7009's 200 and, for a token Sigil signed for this very client and not yet expired,
 * records its `jti` until its `exp`. Anything else (a forged or expired token, another
 * client's) is answered the same 200 with nothing recorded (§2.2: the answer says nothing
 * about the token).
 */
export function revocationExtension({ issuer, signingKeys, revocations }: RevocationDependencies): KoaMiddleware {
  const keySet = createLocalJWKSet({ keys: signingKeys.map((key) => ({ ...publicJwk(key) })) });

  async function revoke(client: Client, token: string): Promise<void> {
    let payload;
    try {
      ({ payload } = await jwtVerify(token, keySet, { issuer, typ: 'at+jwt', algorithms: ['RS256'], requiredClaims: ['jti', 'exp'] }));
    } catch {
      return;
    }
    if (payload['client_id'] !== client.clientId || typeof payload.jti !== 'string' || typeof payload.exp !== 'number') return;
    const audiences = typeof payload.aud === 'string' ? [payload.aud] : (payload.aud ?? []);
    await revocations.record({ kind: 'jti', value: payload.jti, audiences, expiresAt: new Date(payload.exp * 1000) });
  }

  return async (ctx, next) => {
    await next();
    if (ctx.path !== routes.revocation || ctx.method !== 'POST' || !('oidc' in ctx)) return;
    const { oidc } = ctx as KoaContextWithOIDC;
    const body = ctx.body as { error?: unknown } | undefined;
    if (ctx.status !== 400 || body?.error !== 'unsupported_token_type') return;
    const client = oidc.client;
    const token = oidc.params?.['token'];
    if (client === undefined || typeof token !== 'string') return;
    await revoke(client, token);
    ctx.status = 200;
    ctx.body = '';
  };
}
