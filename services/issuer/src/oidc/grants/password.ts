import type { IncomingMessage } from 'node:http';

import type { Knex } from 'knex';
import type Provider from 'oidc-provider';
import { errors, type Client, type KoaContextWithOIDC, type ResourceServer } from 'oidc-provider';

import type { PasswordHasher } from '../../domain/passwords.js';
import { signIn, type SignInResult } from '../../domain/sign-in.js';
import { readsOf } from '../request-reads.js';
import { defaultResource } from '../resource-servers.js';

/** 429 with Retry-After: the account or address is temporarily locked (documented in the README). */
class TooManyAttempts extends errors.OIDCProviderError {
  constructor() {
    super(429, 'invalid_grant');
    Object.assign(this, { error_description: 'too many failed sign-in attempts; retry later' });
  }
}

/** The one description for a wrong password, an unknown user and a disabled user. */
export const INVALID_CREDENTIALS = 'invalid username or password';

export const PASSWORD_GRANT_PARAMETERS = ['username', 'password', 'scope', 'resource'];

/**
 * The resource owner password credentials grant (RFC 6749 §4.3), opt-in per client (S4):
 * only clients registered with the `password` grant reach this handler. Issues an RFC 9068
 * access token for one resource, and a refresh token when the client may refresh.
 */
export interface PasswordGrantDependencies {
  readonly db: Knex;
  readonly hasher: PasswordHasher;
  readonly resolveResourceServer: (ctx: KoaContextWithOIDC, indicator: string, client: Client) => ResourceServer;
  /** The client's address under TRUST_PROXY, for throttling and the audit trail. */
  readonly clientAddress: (req: IncomingMessage) => string;
  readonly onSignIn?: (outcome: SignInResult['outcome']) => void;
}

export function passwordGrant(provider: Provider, { db, hasher, resolveResourceServer, clientAddress, onSignIn }: PasswordGrantDependencies) {
  return async function passwordGrantHandler(ctx: KoaContextWithOIDC): Promise<void> {
    const { params, client } = ctx.oidc;
    const username = params?.['username'];
    const password = params?.['password'];
    if (client === undefined) throw new errors.InvalidClient('client not found');
    if (typeof username !== 'string' || username === '' || typeof password !== 'string' || password === '') {
      throw new errors.InvalidRequest('username and password are required');
    }

    // the request is checked before any password work: a bad scope or resource is not a sign-in
    const requested = params?.['resource'];
    if (Array.isArray(requested) && requested.length > 1) {
      throw new errors.InvalidTarget('only a single resource indicator value is supported for this grant type');
    }
    const resource = (Array.isArray(requested) ? requested[0] : requested) ?? defaultResource(ctx, client);
    if (typeof resource !== 'string') throw new errors.InvalidTarget('no resource registered for this client');
    // applies the client's scope policy (refusing scopes it may not have) and the audience
    const info = resolveResourceServer(ctx, resource, client);
    const scope = String(params?.['scope'] ?? '');

    const result = await signIn(db, hasher, { username, password, ip: clientAddress(ctx.req), clientId: client.clientId });
    onSignIn?.(result.outcome);
    if (result.outcome === 'throttled') {
      ctx.set('Retry-After', String(result.retryAfterSeconds));
      throw new TooManyAttempts();
    }
    if (result.outcome === 'invalid') {
      throw Object.assign(new errors.InvalidGrant(), { error_description: INVALID_CREDENTIALS });
    }

    // the engine asks for this user again (account, token roles): it was just read
    readsOf(ctx).users.set(result.user.id, Promise.resolve(result.user));
    const grant = new provider.Grant({ accountId: result.user.id, clientId: client.clientId });
    grant.addResourceScope(resource, scope);
    const grantId = await grant.save();

    const accessToken = new provider.AccessToken({ accountId: result.user.id, client, grantId, gty: 'password', scope });
    accessToken.resourceServer = new provider.ResourceServer(resource, info);
    const body: Record<string, unknown> = {
      access_token: await accessToken.save(),
      expires_in: accessToken.expiration,
      token_type: 'Bearer',
      scope: scope || undefined,
    };
    if (client.grantTypeAllowed('refresh_token')) {
      const refreshToken = new provider.RefreshToken({
        accountId: result.user.id,
        client,
        grantId,
        gty: 'password',
        resource,
        scope,
        rotations: 0,
      });
      body['refresh_token'] = await refreshToken.save();
    }
    ctx.body = body;
  };
}
