import { createLocalJWKSet, jwtVerify } from 'jose';
import type { Client, KoaContextWithOIDC } from 'oidc-provider';

import { authenticateApiKey, looksLikeApiKey, type ApiKeyStore } from '../domain/api-keys.js';
import type { RevocationStore } from '../domain/revocations.js';
import { publicJwk, type PrivateJwk } from '../keys/key-store.js';
import type { PayloadStore } from '../storage/payloads.js';
import { registeredResources } from './client-metadata.js';
import type { KoaMiddleware } from './koa.js';
import { routes } from './routes.js';

type IntrospectionBody = Record<string, unknown>;

/** Stored tokens (refresh tokens) are described only to the client they were issued to (RFC 7662 §4). */
export function introspectionAllowed(client: Client, token: { readonly clientId?: string | undefined }): boolean {
  return token.clientId === client.clientId;
}

export interface IntrospectionDependencies {
  readonly issuer: string;
  readonly signingKeys: readonly PrivateJwk[];
  readonly apiKeys: ApiKeyStore;
  readonly payloads: PayloadStore;
  readonly revocations: RevocationStore;
}

/**
 * RFC 7662 answers for the two kinds of credential the engine cannot introspect: Sigil API
 * keys, and JWT access tokens (never stored; docs/engine.md#jwt-access-tokens-are-not-stored). The engine
 * has already parsed the request and authenticated the calling client; this only replaces its
 * answer.
 */
export function introspectionExtension({ issuer, signingKeys, apiKeys, payloads, revocations }: IntrospectionDependencies): KoaMiddleware {
  const keySet = createLocalJWKSet({ keys: signingKeys.map((key) => ({ ...publicJwk(key) })) });

  async function apiKeyAnswer(client: Client, token: string): Promise<IntrospectionBody> {
    // only confidential clients (resource services) may resolve API keys
    if (client.clientAuthMethod === 'none') return { active: false };
    const apiKey = await authenticateApiKey(apiKeys, token);
    if (apiKey === undefined) return { active: false };
    return {
      active: true,
      token_type: 'api_key',
      iss: issuer,
      sub: apiKey.id,
      api_key_id: apiKey.id,
      name: apiKey.name,
      scope: apiKey.scopes.join(' ') || undefined,
      roles: apiKey.roles,
      iat: Math.floor(apiKey.createdAt.getTime() / 1000),
      exp: apiKey.expiresAt === null ? undefined : Math.floor(apiKey.expiresAt.getTime() / 1000),
    };
  }

  async function jwtAnswer(client: Client, token: string): Promise<IntrospectionBody> {
    let payload;
    try {
      ({ payload } = await jwtVerify(token, keySet, { issuer, typ: 'at+jwt', algorithms: ['RS256'] }));
    } catch {
      return { active: false };
    }
    const audiences = typeof payload.aud === 'string' ? [payload.aud] : (payload.aud ?? []);
    // the token's own client, or the resource server it was minted for (RFC 7662 §4)
    const allowed = payload['client_id'] === client.clientId || audiences.some((audience) => registeredResources(client).includes(audience));
    if (!allowed) return { active: false };
    // a user token is only as alive as its grant (revoked by RFC 7009 revocation or refresh reuse)
    const grantId = payload['grant_id'];
    if (typeof grantId === 'string' && !(await payloads.grantAlive(grantId, new Date()))) return { active: false };
    // a revoked token (RFC 7009) or ended grant (revocation.ts, storage/revocations.ts)
    if (await revocations.isRevoked(typeof payload.jti === 'string' ? payload.jti : undefined, typeof grantId === 'string' ? grantId : undefined)) return { active: false };
    return { ...payload, active: true, token_type: 'Bearer' };
  }

  return async (ctx, next) => {
    await next();
    if (ctx.path !== routes.introspection || ctx.method !== 'POST' || !('oidc' in ctx)) return;
    const { oidc } = ctx as KoaContextWithOIDC;
    const client = oidc.client;
    const token = oidc.params?.['token'];
    if (client === undefined || typeof token !== 'string') return;
    const body = ctx.body as { active?: unknown; error?: unknown } | undefined;
    if (looksLikeApiKey(token) && body?.active === false) {
      ctx.body = await apiKeyAnswer(client, token);
    } else if (ctx.status === 400 && body?.error === 'unsupported_token_type') {
      ctx.status = 200;
      ctx.body = await jwtAnswer(client, token);
    }
  };
}
