import type { AdapterPayload, Client } from 'oidc-provider';

import type { ClientStore, ClientWithSecret } from '../domain/clients.js';
import { isLoopbackHost } from '../domain/validation.js';
import { OIDC_SCOPES } from './scope-policy.js';

/** Sigil's members of client metadata, beside RFC 7591's (the engine's `extraClientMetadata`). */
export const EXTRA_CLIENT_METADATA = [
  'allowed_scopes',
  'roles',
  'resources',
  'first_party',
  'access_token_ttl',
  'previous_client_secret',
  'previous_client_secret_expires_at',
  'secret_methods',
  'may_exchange_for',
];

/** The ways a client may present its secret (RFC 6749 §2.3.1). */
export const SECRET_METHODS = ['client_secret_basic', 'client_secret_post'] as const;
export type SecretMethod = (typeof SECRET_METHODS)[number];

/**
 * The engine needs a `client_secret` for every client that authenticates with one. A client
 * switched back from private_key_jwt has none until `clients rotate-secret`: this stands in
 * for it, and no presented secret matches it (it is no SHA-256 digest: `secretMatches`).
 */
const NO_SECRET = 'none: clients rotate-secret gives this client a secret';

/**
 * How the client authenticates (RFC 7591 §2 `token_endpoint_auth_method`, the same at every
 * endpoint): none for a public client; a JWT signed with one of its keys (RFC 7523 §2.2),
 * given inline or at its jwks_uri; or its secret's SHA-256 digest (client-authentication.ts
 * hashes the presented secret to compare), with the one way it may present it in
 * `secret_methods` when it was registered with one (the engine itself accepts either for a
 * client of either).
 */
function authenticationMetadata(client: ClientWithSecret): AdapterPayload {
  if (client.public) return { token_endpoint_auth_method: 'none' };
  if (client.auth === 'private_key_jwt') {
    return {
      token_endpoint_auth_method: 'private_key_jwt',
      // the engine takes only plain objects of its own realm as keys (client-cache.ts metadataOf)
      ...(client.jwks === null ? {} : { jwks: { keys: client.jwks.keys.map((key) => ({ ...key })) } }),
      ...(client.jwksUri === null ? {} : { jwks_uri: client.jwksUri }),
    };
  }
  return {
    token_endpoint_auth_method: client.auth ?? 'client_secret_basic',
    // registered with no --auth: either way (no member, which every cached client would hold)
    ...(client.auth === null ? {} : { secret_methods: [client.auth] }),
    client_secret: client.secretHash ?? NO_SECRET,
  };
}

/** Client metadata (RFC 7591 names plus Sigil's extra members) the engine validates. */
export function clientMetadata(client: ClientWithSecret): AdapterPayload {
  const loopbackOrNative = client.redirectUris.every((uri) => {
    const url = new URL(uri);
    return url.protocol !== 'https:' && (url.protocol !== 'http:' || isLoopbackHost(url.hostname));
  });
  return {
    client_id: client.id,
    client_name: client.name,
    ...authenticationMetadata(client),
    // after a rotation with a grace period: the replaced secret's digest, and until when (epoch ms)
    ...(client.previousSecretHash === null || client.previousSecretExpiresAt === null || client.previousSecretExpiresAt.getTime() <= Date.now()
      ? {}
      : { previous_client_secret: client.previousSecretHash, previous_client_secret_expires_at: client.previousSecretExpiresAt.getTime() }),
    grant_types: [...client.grants],
    response_types: client.grants.includes('authorization_code') ? ['code'] : [],
    redirect_uris: [...client.redirectUris],
    // RP-initiated logout: the engine sends the browser back only to one of these, matched exactly
    post_logout_redirect_uris: [...client.postLogoutRedirectUris],
    // a public client whose redirect URIs are all loopback or private-use schemes is a
    // native app: only then may a loopback port vary (RFC 8252 §7.3, RFC 9700 §4.1.3)
    application_type: client.public && client.redirectUris.length > 0 && loopbackOrNative ? 'native' : 'web',
    // the engine only accepts its own (OpenID) scopes here; resource scopes live in allowed_scopes
    scope: client.scopes.filter((scope) => OIDC_SCOPES.has(scope)).join(' ') || undefined,
    allowed_scopes: [...client.scopes],
    roles: [...client.roles],
    resources: [...client.resources],
    first_party: client.firstParty,
    ...(client.accessTokenTtl === null ? {} : { access_token_ttl: client.accessTokenTtl }),
    // RFC 9449 §5.2: the engine refuses this client's token requests without a DPoP proof
    ...(client.requireDpop ? { dpop_bound_access_tokens: true } : {}),
    ...(client.mayExchangeFor.length === 0 ? {} : { may_exchange_for: [...client.mayExchangeFor] }),
  };
}

/**
 * One client's metadata, read from the client store. A disabled client has none: the engine
 * finds no such client, and answers as for an unknown one (`invalid_client`, 401).
 */
export async function loadClientMetadata(clients: ClientStore, id: string): Promise<AdapterPayload | undefined> {
  const client = await clients.find(id);
  return client === undefined || client.disabledAt !== null ? undefined : clientMetadata(client);
}

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

/** The engine's client, or the metadata it is made from. */
type ClientData = Client | AdapterPayload;

/** The resources (audiences) a client registered, in registration order. */
export function registeredResources(client: ClientData): string[] {
  return stringList(client['resources']);
}

/** The resources the client may exchange tokens into (RFC 8693, `--may-exchange-for`), in registration order. */
export function exchangeTargets(client: ClientData): string[] {
  return stringList(client['may_exchange_for']);
}

/** Every scope the client is registered for (resource scopes and OpenID scopes). */
export function allowedScopes(client: ClientData): string[] {
  return stringList(client['allowed_scopes']);
}

/** The roles a client carries into its client-credentials tokens. */
export function clientRoles(client: Client): string[] {
  return stringList(client['roles']);
}

/** Whether the client is first-party (`--first-party`): no consent page. */
export function isFirstParty(client: Client): boolean {
  return client['first_party'] === true;
}

/**
 * The secret digest a rotation replaced and until when it is accepted (epoch ms), if the
 * client has one (see `sigil clients rotate-secret --grace`).
 */
export function previousClientSecret(client: Client): { readonly hash: string; readonly expiresAt: number } | undefined {
  const hash = client['previous_client_secret'];
  const expiresAt = client['previous_client_secret_expires_at'];
  return typeof hash === 'string' && typeof expiresAt === 'number' ? { hash, expiresAt } : undefined;
}

/**
 * The ways the client may present its secret: the one it was registered with (`--auth`), or
 * either when it was registered with none (no `secret_methods`); none for a client that
 * authenticates otherwise.
 */
export function secretMethods(client: Client): readonly SecretMethod[] {
  const registered = client['secret_methods'];
  if (registered === undefined) return isSecretMethod(client.tokenEndpointAuthMethod) ? SECRET_METHODS : [];
  return stringList(registered).filter(isSecretMethod);
}

function isSecretMethod(method: unknown): method is SecretMethod {
  return (SECRET_METHODS as readonly unknown[]).includes(method);
}

/** The client's own access-token lifetime in seconds (`--access-token-ttl`), if it has one. */
export function clientAccessTokenTtl(client: Client | undefined): number | undefined {
  const ttl = client?.['access_token_ttl'];
  return typeof ttl === 'number' && Number.isInteger(ttl) && ttl > 0 ? ttl : undefined;
}
