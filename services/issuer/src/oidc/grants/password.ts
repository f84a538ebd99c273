import type { IncomingMessage } from 'node:http';

import type Provider from 'oidc-provider';
import { errors, type KoaContextWithOIDC, type ResourceServer } from 'oidc-provider';

import type { PasswordHasher } from '../../domain/passwords.js';
import { signIn, type SignInResult, type SignInStores } from '../../domain/sign-in.js';
import { InvalidCredentials, TooManyAttempts } from '../errors.js';
import { readAheadOf } from '../request-read-ahead.js';
import { defaultResource, type ResourceServerResolver } from '../resource-indicators.js';
import { grantedScope } from '../scope-policy.js';
import { bindRefreshToken, bindToProofKey, dpopProof, refuseReplayedProof, type DpopProof } from '../sender-constraint.js';
import { splitScope } from '../../domain/validation.js';

/**
 * The resource owner password credentials grant (RFC 6749 §4.3), opt-in per client (the
 * security BCP discourages it, RFC 9700 §2.4): only clients registered with the `password`
 * grant reach this handler. Issues an RFC 9068 access token for one resource, and a refresh
 * token when the client may refresh; with a DPoP proof, the access token is bound to its key
 * (RFC 9449, sender-constraint.ts). Shaped like the engine's own grants: `grantType`,
 * `parameters`, `handler`.
 */
export const grantType = 'password';

/** Parameters the engine keeps for this grant (any other is stripped); `resource` must be listed. */
export const parameters = ['username', 'password', 'scope', 'resource'];

export interface PasswordGrantDependencies {
  readonly stores: SignInStores;
  readonly hasher: PasswordHasher;
  readonly resolveResourceServer: ResourceServerResolver;
  /** The client's address under TRUST_PROXY, for throttling and the audit trail. */
  readonly clientAddress: (req: IncomingMessage) => string;
  readonly onSignIn?: (outcome: SignInResult['outcome']) => void;
}

/**
 * 503 `temporarily_unavailable` with Retry-After (set by the grant): the password hasher is
 * overloaded and refused before any work. Defined here rather than in `oidc/errors.ts`, which
 * another change owns; the engine exposes only errors below 500 unless told.
 */
class SignInUnavailable extends errors.OIDCProviderError {
  constructor() {
    super(503, 'temporarily_unavailable');
    Object.assign(this, { expose: true, error_description: 'too many sign-ins at once; retry later' });
  }
}

/** The request's single resource (RFC 8707 §2), or the client's default one. */
function requestedResource(ctx: KoaContextWithOIDC): string {
  const requested = ctx.oidc.params?.['resource'];
  if (Array.isArray(requested) && requested.length > 1) {
    throw new errors.InvalidTarget('only a single resource indicator value is supported for this grant type');
  }
  const client = ctx.oidc.client;
  const resource = (Array.isArray(requested) ? requested[0] : requested) ?? (client === undefined ? undefined : defaultResource(ctx, client));
  if (typeof resource !== 'string') throw new errors.InvalidTarget('this client has no registered resource (audience) to issue an access token for');
  return resource;
}

/** Mints the access token (and the refresh token, when the client may refresh) for a signed-in user. */
async function issueTokens(provider: Provider, ctx: KoaContextWithOIDC, accountId: string, resource: string, scope: string, info: ResourceServer, proof: DpopProof | undefined) {
  const client = ctx.oidc.client;
  if (client === undefined) throw new errors.InvalidClient('client not found');
  const grant = new provider.Grant({ accountId, clientId: client.clientId });
  grant.addResourceScope(resource, scope);
  const grantId = await grant.save();

  const accessToken = new provider.AccessToken({ accountId, client, grantId, gty: grantType, scope });
  accessToken.resourceServer = new provider.ResourceServer(resource, info);
  bindToProofKey(accessToken, proof);
  const body: Record<string, unknown> = {
    access_token: await accessToken.save(),
    expires_in: accessToken.expiration,
    // DPoP when bound to a proof's key (RFC 9449 §5.1), Bearer otherwise
    token_type: accessToken.tokenType,
    scope: scope || undefined,
  };
  if (client.grantTypeAllowed('refresh_token')) {
    const refreshToken = new provider.RefreshToken({ accountId, client, grantId, gty: grantType, resource, scope, rotations: 0 });
    await bindRefreshToken(provider, ctx, accessToken, refreshToken);
    body['refresh_token'] = await refreshToken.save();
  }
  return body;
}

export function handler(provider: Provider, { stores, hasher, resolveResourceServer, clientAddress, onSignIn }: PasswordGrantDependencies) {
  return async function passwordGrantHandler(ctx: KoaContextWithOIDC): Promise<void> {
    const { params, client } = ctx.oidc;
    const username = params?.['username'];
    const password = params?.['password'];
    if (client === undefined) throw new errors.InvalidClient('client not found');
    if (typeof username !== 'string' || username === '' || typeof password !== 'string' || password === '') {
      throw new errors.InvalidRequest('username and password are required');
    }
    // a bad or missing (--require-dpop) proof is refused before any password work
    const proof = await dpopProof(provider, ctx);

    // the request is checked before any password work: a bad scope or resource is not a sign-in
    const resource = requestedResource(ctx);
    // applies the client's scope policy (refusing scopes it may not have) and the audience;
    // the token carries what was asked for within the audience's scopes, as the engine's grants do
    const info = await resolveResourceServer(ctx, resource, client);
    const scope = grantedScope(splitScope(String(params?.['scope'] ?? '')), info.scope);
    // and a replayed one too: refused after the sign-in, it would tell a right password from a wrong one
    await refuseReplayedProof(provider, ctx, proof);

    const result = await signIn(stores, hasher, { username, password, ip: clientAddress(ctx.req), clientId: client.clientId });
    onSignIn?.(result.outcome);
    if (result.outcome === 'throttled' || result.outcome === 'unavailable') {
      ctx.set('Retry-After', String(result.retryAfterSeconds));
      throw result.outcome === 'throttled' ? new TooManyAttempts(result.reason) : new SignInUnavailable();
    }
    if (result.outcome === 'invalid') {
      throw new InvalidCredentials();
    }

    // the engine asks for this user again (account, token roles): it was just read
    readAheadOf(ctx).users.set(result.user.id, Promise.resolve(result.user));
    ctx.body = await issueTokens(provider, ctx, result.user.id, resource, scope, info, proof);
  };
}
