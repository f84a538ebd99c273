import { createLocalJWKSet, jwtVerify, type JWTPayload } from 'jose';
import type { Client, KoaContextWithOIDC } from 'oidc-provider';

import { authenticateApiKey, looksLikeApiKey, type ApiKeyStore } from '../domain/api-keys.js';
import type { RevocationStore } from '../domain/revocations.js';
import { publicJwk, type PrivateJwk } from '../keys/key-store.js';
import type { PayloadStore } from '../storage/payloads.js';
import { registeredResources } from './client-metadata.js';
import { errorBody } from './errors.js';
import type { KoaMiddleware } from './koa.js';
import { routes } from './routes.js';

type IntrospectionBody = Record<string, unknown>;

/** The answer to anyone who may not know, and for anything not alive: nothing but the fact (RFC 7662 §2.2). */
const inactive = (): IntrospectionBody => ({ active: false });

/** Who a credential may be described to: the client it was issued to (none for an API key) and its audiences. */
export interface CredentialParties {
  readonly clientId?: string | undefined;
  readonly audiences: readonly string[];
}

const strings = (value: unknown): string[] =>
  typeof value === 'string' ? [value] : Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];

/**
 * Whether `client` may learn about a credential (RFC 7662 §4): it must be confidential, and be
 * either the client the credential was issued to or a client registered for one of its
 * audiences. Everyone else gets `{"active": false}`, whatever the credential is.
 */
export function mayKnow(client: Client, { clientId, audiences }: CredentialParties): boolean {
  if (client.clientAuthMethod === 'none') return false;
  if (clientId !== undefined && clientId === client.clientId) return true;
  const registered = registeredResources(client);
  return audiences.some((audience) => registered.includes(audience));
}

/**
 * The engine's policy for the tokens it stores (refresh tokens, opaque userinfo tokens): their
 * client, or a client registered for the resource(s) they were granted for.
 */
export function introspectionAllowed(client: Client, token: { readonly clientId?: string | undefined; readonly resource?: unknown; readonly aud?: unknown }): boolean {
  return mayKnow(client, { clientId: token.clientId, audiences: [...strings(token.resource), ...strings(token.aud)] });
}

/** Where the issuer learns that an access token it signed no longer counts. */
export interface WithdrawalSources {
  readonly payloads: Pick<PayloadStore, 'grantAlive'>;
  readonly revocations: Pick<RevocationStore, 'isRevoked'>;
}

/**
 * Whether what a valid JWT access token of this issuer stands on has been withdrawn since it was
 * signed: introspection's rule, and the admin API's.
 */
export async function accessTokenWithdrawn({ payloads, revocations }: WithdrawalSources, claims: JWTPayload): Promise<boolean> {
  // a user token is only as alive as its grant (revoked by RFC 7009 revocation or refresh reuse)
  const grantId = typeof claims['grant_id'] === 'string' ? claims['grant_id'] : undefined;
  if (grantId !== undefined && !(await payloads.grantAlive(grantId, new Date()))) return true;
  // a revoked token (RFC 7009), an ended grant (revocation.ts, storage/revocations.ts), or a
  // client disabled or deleted since the token was issued (storage/clients.ts)
  return revocations.isRevoked({
    jti: typeof claims.jti === 'string' ? claims.jti : undefined,
    grantId,
    clientId: typeof claims['client_id'] === 'string' ? claims['client_id'] : undefined,
    issuedAt: claims.iat,
  });
}

export interface IntrospectionDependencies {
  readonly issuer: string;
  readonly signingKeys: readonly PrivateJwk[];
  readonly apiKeys: ApiKeyStore;
  readonly payloads: PayloadStore;
  readonly revocations: RevocationStore;
}

/** A public client authenticates with nothing but its id: it may not introspect at all. */
function refusePublicClient(ctx: KoaContextWithOIDC): void {
  ctx.status = 401;
  ctx.body = errorBody('invalid_client', 'client authentication failed');
}

/**
 * RFC 7662 answers for the two kinds of credential the engine cannot introspect: Sigil API
 * keys, and JWT access tokens (never stored; docs/engine.md#jwt-access-tokens-are-not-stored).
 * The engine has already parsed the request and authenticated the calling client; this only
 * replaces its answer, and refuses public clients (docs/engine.md#introspection-and-revocation-policies).
 */
export function introspectionExtension({ issuer, signingKeys, apiKeys, payloads, revocations }: IntrospectionDependencies): KoaMiddleware {
  const keySet = createLocalJWKSet({ keys: signingKeys.map((key) => ({ ...publicJwk(key) })) });

  async function apiKeyAnswer(client: Client, token: string): Promise<IntrospectionBody> {
    const apiKey = await authenticateApiKey(apiKeys, token);
    if (apiKey === undefined || !mayKnow(client, { audiences: apiKey.resources })) return inactive();
    // only an answer that vouches for the key counts as its use (and at most one write a minute)
    await apiKeys.recordUse(apiKey.id);
    return {
      active: true,
      token_type: 'api_key',
      iss: issuer,
      sub: apiKey.id,
      aud: apiKey.resources,
      api_key_id: apiKey.id,
      name: apiKey.name,
      scope: apiKey.scopes.join(' ') || undefined,
      roles: apiKey.roles,
      iat: Math.floor(apiKey.createdAt.getTime() / 1000),
      exp: apiKey.expiresAt === null ? undefined : Math.floor(apiKey.expiresAt.getTime() / 1000),
    };
  }

  /** The claims of a JWT access token this issuer signed and that has not expired, or undefined. */
  async function verifiedClaims(token: string): Promise<JWTPayload | undefined> {
    try {
      return (await jwtVerify(token, keySet, { issuer, typ: 'at+jwt', algorithms: ['RS256'] })).payload;
    } catch {
      return undefined;
    }
  }

  const withdrawn = (claims: JWTPayload) => accessTokenWithdrawn({ payloads, revocations }, claims);

  async function jwtAnswer(client: Client, token: string): Promise<IntrospectionBody> {
    const claims = await verifiedClaims(token);
    if (claims === undefined) return inactive();
    const clientId = typeof claims['client_id'] === 'string' ? claims['client_id'] : undefined;
    if (!mayKnow(client, { clientId, audiences: strings(claims.aud) })) return inactive();
    if (await withdrawn(claims)) return inactive();
    // a token bound to a key says so (RFC 9449 §6.2): its cnf is among its claims
    return { ...claims, active: true, token_type: claims['cnf'] === undefined ? 'Bearer' : 'DPoP' };
  }

  return async (ctx, next) => {
    await next();
    if (ctx.path !== routes.introspection || ctx.method !== 'POST' || !('oidc' in ctx)) return;
    const oidcCtx = ctx as KoaContextWithOIDC;
    const client = oidcCtx.oidc.client;
    if (client === undefined) return;
    if (client.clientAuthMethod === 'none') {
      refusePublicClient(oidcCtx);
      return;
    }
    const token = oidcCtx.oidc.params?.['token'];
    if (typeof token !== 'string') return;
    const body = ctx.body as { active?: unknown; error?: unknown } | undefined;
    if (looksLikeApiKey(token) && body?.active === false) {
      ctx.body = await apiKeyAnswer(client, token);
    } else if (ctx.status === 400 && body?.error === 'unsupported_token_type') {
      ctx.status = 200;
      ctx.body = await jwtAnswer(client, token);
    }
  };
}
