import { z } from 'zod';

import type { Page, PageQuery } from './pages.js';

import { clientJwksSchema, clientJwksUri, type ClientKeySet } from './client-keys.js';
import { generateId, generateSecret, hashSecret } from './secrets.js';
import { postLogoutRedirectUri, redirectUri, resourceUri, roleList, scopeList } from './validation.js';

/** RFC 8693 §2.1's grant type: a client exchanges a token it was sent for one for another resource. */
export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const GRANT_TYPES = ['client_credentials', 'password', 'authorization_code', 'refresh_token', TOKEN_EXCHANGE] as const;
/** Bounds of a client's own access-token lifetime, in seconds (one minute to one day). */
export const MIN_ACCESS_TOKEN_TTL = 60;
export const MAX_ACCESS_TOKEN_TTL = 86_400;
export type GrantType = (typeof GRANT_TYPES)[number];
/**
 * How a confidential client may authenticate (`--auth`): one way of presenting its secret
 * (RFC 6749 §2.3.1), or a JWT signed with one of its keys (RFC 7523 §2.2). A client registered
 * with none of them (null) may present its secret either way.
 */
export const CLIENT_AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt'] as const;
export type ClientAuthMethod = (typeof CLIENT_AUTH_METHODS)[number];

const ACCESS_TOKEN_TTL_RULE = `--access-token-ttl is a whole number of seconds from ${MIN_ACCESS_TOKEN_TTL} to ${MAX_ACCESS_TOKEN_TTL}`;

/** The rule of each setting of a client, on its own (no defaults: an update leaves out what it keeps). */
const clientFields = {
  name: z.string().trim().min(1, 'a name is required').max(200, 'a name is at most 200 characters'),
  grants: z
    .array(z.enum(GRANT_TYPES, { error: `a grant is one of ${GRANT_TYPES.join(', ')}` }))
    .transform((grants) => [...new Set(grants)]),
  scopes: scopeList,
  roles: roleList,
  redirectUris: z.array(redirectUri).max(20),
  // OpenID Connect RP-Initiated Logout 1.0 §3.1: where /session/end may send the browser back to
  postLogoutRedirectUris: z.array(postLogoutRedirectUri).max(20).transform((uris) => [...new Set(uris)]),
  resources: z.array(resourceUri).max(20),
  public: z.boolean(),
  firstParty: z.boolean(),
  accessTokenTtl: z
    .number({ error: ACCESS_TOKEN_TTL_RULE })
    .int(ACCESS_TOKEN_TTL_RULE)
    .min(MIN_ACCESS_TOKEN_TTL, `--access-token-ttl is at least ${MIN_ACCESS_TOKEN_TTL} seconds`)
    .max(MAX_ACCESS_TOKEN_TTL, `--access-token-ttl is at most ${MAX_ACCESS_TOKEN_TTL} seconds (one day)`)
    .nullable(),
  auth: z.enum(CLIENT_AUTH_METHODS, { error: `--auth is one of ${CLIENT_AUTH_METHODS.join(', ')}` }).nullable(),
  jwks: clientJwksSchema.nullable(),
  jwksUri: clientJwksUri.nullable(),
  // RFC 9449 §5.2 dpop_bound_access_tokens: token requests without a DPoP proof are refused
  requireDpop: z.boolean(),
  // RFC 8693: the resources a client may exchange the tokens it is sent for (its --resource) into
  mayExchangeFor: z.array(resourceUri).max(20).transform((targets) => [...new Set(targets)]),
};

/** What an administrator decides about a client: everything but its id, secret and lifecycle. */
export interface ClientSettings {
  readonly name: string;
  readonly grants: readonly GrantType[];
  readonly scopes: readonly string[];
  readonly roles: readonly string[];
  readonly redirectUris: readonly string[];
  /** Where RP-initiated logout may send the browser back to, matched exactly; none: to Sigil's own signed-out page. */
  readonly postLogoutRedirectUris: readonly string[];
  readonly resources: readonly string[];
  readonly public: boolean;
  readonly firstParty: boolean;
  /** Lifetime of its access tokens in seconds; null: the issuer's ACCESS_TOKEN_TTL. */
  readonly accessTokenTtl: number | null;
  /** How it authenticates; null: a confidential client presents its secret either way, a public one none. */
  readonly auth: ClientAuthMethod | null;
  /** Its public keys, given inline (`--jwks-file`), for `private_key_jwt`; null otherwise. */
  readonly jwks: ClientKeySet | null;
  /** Where it publishes its public keys (`--jwks-uri`), for `private_key_jwt`; null otherwise. */
  readonly jwksUri: string | null;
  /** Whether every token request must carry a DPoP proof, so that its tokens are bound to the client's key (RFC 9449). */
  readonly requireDpop: boolean;
  /** Token exchange targets (RFC 8693): the resources it may exchange tokens for its own resources into. */
  readonly mayExchangeFor: readonly string[];
}

/** The rules between settings, for a new client and for the result of an update alike. */
function checkClientRules(client: ClientSettings, problem: (message: string) => void): void {
  const has = (grant: GrantType) => client.grants.includes(grant);
  if (client.public && (has('client_credentials') || has('password'))) {
    problem('a public client cannot use the client_credentials or password grant (it cannot authenticate)');
  }
  if (has('authorization_code') && client.redirectUris.length === 0) {
    problem('the authorization_code grant needs at least one --redirect-uri');
  }
  if (!has('authorization_code') && client.redirectUris.length > 0) {
    problem('--redirect-uri is only meaningful with the authorization_code grant');
  }
  // only a client that signs users in has a session at the issuer to end
  if (!has('authorization_code') && client.postLogoutRedirectUris.length > 0) {
    problem('--post-logout-redirect-uri is only meaningful with the authorization_code grant');
  }
  if (has('refresh_token') && !has('authorization_code') && !has('password')) {
    problem('the refresh_token grant needs the authorization_code or password grant');
  }
  if (has(TOKEN_EXCHANGE) && client.public) {
    problem('a public client cannot use the token exchange grant (it cannot authenticate)');
  }
  if (!has(TOKEN_EXCHANGE) && client.mayExchangeFor.length > 0) {
    problem(`--may-exchange-for is only meaningful with the ${TOKEN_EXCHANGE} grant`);
  }
  if (client.grants.length === 0) {
    // a resource service's own client: it authenticates to introspection and the revocation feed
    if (client.public) problem('a client with no --grant (a resource service\'s own client) must be confidential: it authenticates with its secret');
    if (client.firstParty) problem('--first-party is only meaningful with the authorization_code grant');
    if (client.accessTokenTtl !== null) problem('--access-token-ttl is only meaningful for a client with a grant');
    if (client.requireDpop) problem('--require-dpop is only meaningful for a client with a grant (it asks for no token)');
  }
  checkAuthenticationRules(client, problem);
}

/** A client's way of authenticating and the keys it needs (RFC 7523 §2.2): keys only, and exactly one source of them, for private_key_jwt. */
function checkAuthenticationRules(client: ClientSettings, problem: (message: string) => void): void {
  if (client.public && client.auth !== null) problem('a public client does not authenticate: --auth is for confidential clients');
  const keySources = (client.jwks === null ? 0 : 1) + (client.jwksUri === null ? 0 : 1);
  if (client.auth === 'private_key_jwt') {
    if (keySources === 0) problem('--auth private_key_jwt needs the client\'s public keys: --jwks-file or --jwks-uri');
    if (keySources === 2) problem('--jwks-file and --jwks-uri exclude each other: give one of them');
  } else if (keySources > 0) {
    problem('--jwks-file and --jwks-uri are only meaningful with --auth private_key_jwt');
  }
}

/** What an administrator asks for when registering a client. */
export const newClientSchema = z
  .object({
    name: clientFields.name,
    grants: clientFields.grants.default([]),
    scopes: clientFields.scopes.default([]),
    roles: clientFields.roles.default([]),
    redirectUris: clientFields.redirectUris.default([]),
    postLogoutRedirectUris: clientFields.postLogoutRedirectUris.default([]),
    resources: clientFields.resources.default([]),
    public: clientFields.public.default(false),
    firstParty: clientFields.firstParty.default(false),
    accessTokenTtl: clientFields.accessTokenTtl.default(null),
    auth: clientFields.auth.default(null),
    jwks: clientFields.jwks.default(null),
    jwksUri: clientFields.jwksUri.default(null),
    requireDpop: clientFields.requireDpop.default(false),
    mayExchangeFor: clientFields.mayExchangeFor.default([]),
  })
  .strict()
  .superRefine((client, ctx) => checkClientRules(client, (message) => ctx.addIssue({ code: 'custom', message })));

/** A client id as Sigil makes them (`generateId`): anything else names no client. */
export const clientIdSchema = z.string().regex(/^[0-9a-f]{32}$/u, 'a client id is 32 hexadecimal characters');

/**
 * A change to a client: its id and the settings to replace, each with the rule it has at
 * creation (a list given replaces the whole list; `accessTokenTtl: null` goes back to the
 * issuer's ACCESS_TOKEN_TTL). The rules between settings are checked on the result (`mergeClientUpdate`).
 * `disabled` disables or enables it as `setClientDisabled` does, in the same change.
 */
export const clientUpdateSchema = z
  .object({
    id: clientIdSchema,
    disabled: z.boolean().optional(),
    name: clientFields.name.optional(),
    grants: clientFields.grants.optional(),
    scopes: clientFields.scopes.optional(),
    roles: clientFields.roles.optional(),
    redirectUris: clientFields.redirectUris.optional(),
    postLogoutRedirectUris: clientFields.postLogoutRedirectUris.optional(),
    resources: clientFields.resources.optional(),
    public: clientFields.public.optional(),
    firstParty: clientFields.firstParty.optional(),
    accessTokenTtl: clientFields.accessTokenTtl.optional(),
    auth: clientFields.auth.optional(),
    jwks: clientFields.jwks.optional(),
    jwksUri: clientFields.jwksUri.optional(),
    requireDpop: clientFields.requireDpop.optional(),
    mayExchangeFor: clientFields.mayExchangeFor.optional(),
  })
  .strict()
  .refine(({ id: _id, ...changes }) => Object.values(changes).some((value) => value !== undefined), 'nothing to change: give at least one setting (the flags of clients create)');

export type ClientUpdate = z.input<typeof clientUpdateSchema>;

export type NewClient = z.input<typeof newClientSchema>;

/** Most seconds the secret a rotation replaces may keep working (30 days). */
export const MAX_SECRET_GRACE = 2_592_000;

export interface ClientRecord extends ClientSettings {
  readonly id: string;
  readonly createdAt: Date;
  /** When it was disabled; null while enabled. A disabled client is unknown to the engine. */
  readonly disabledAt: Date | null;
  /** When its secret was last rotated; null: never. */
  readonly secretRotatedAt: Date | null;
  /** Until when the secret the last rotation replaced is still accepted; null: it is not. */
  readonly previousSecretExpiresAt: Date | null;
  /** Whether it holds a secret (never the secret itself). */
  readonly hasSecret: boolean;
}

/** A stored client with its secret digests; only the client authentication path reads this. */
export interface ClientWithSecret extends ClientRecord {
  readonly secretHash: string | null;
  /** The digest of the secret the last rotation replaced, accepted until `previousSecretExpiresAt`. */
  readonly previousSecretHash: string | null;
}

/** A client as it is first stored; `secretHash` is the SHA-256 of its secret (none for public clients). */
export interface ClientToInsert extends ClientSettings {
  readonly id: string;
  readonly secretHash: string | null;
}

/** Where registered clients are kept. */
export interface ClientStore {
  insert(client: ClientToInsert): Promise<ClientWithSecret>;
  /** Every client, oldest first. */
  list(): Promise<ClientWithSecret[]>;
  /** A page of {@link ClientStore.list}'s order. */
  page(query: PageQuery): Promise<Page<ClientWithSecret>>;
  /** Locks the client's row until the end of the caller's transaction. @returns whether there is one */
  lock(id: string): Promise<boolean>;
  find(id: string): Promise<ClientWithSecret | undefined>;
  /**
   * Replaces the settings of client `id` with what `change` makes of the stored client, the row
   * locked meanwhile; when `change` throws, nothing is written. Settings that make it a
   * private_key_jwt client drop its secret (and a previous one) in the same change.
   * @returns undefined when there is no such client
   */
  update(id: string, change: (stored: ClientWithSecret) => ClientSettings): Promise<ClientWithSecret | undefined>;
  /**
   * Disables (or enables) the client. Disabling revokes, in the same transaction, every grant it
   * holds and everything issued under them (refresh tokens, codes), each grant recorded ended
   * (its access tokens read revoked), and records the client revoked: every access token issued
   * to it up to that moment reads revoked, client credentials ones included. Enabling it again
   * brings none of them back (enabling revokes once more whatever a token request racing with
   * the disabling stored); tokens issued after enabling are not revoked.
   * @returns undefined when there is no such client
   */
  setDisabled(id: string, disabled: boolean): Promise<ClientWithSecret | undefined>;
  /** Deletes the client, revoking its grants and access tokens as `setDisabled` does, in the same transaction. */
  delete(id: string): Promise<ClientWithSecret | undefined>;
  /**
   * Stores `secretHash` as the client's secret; the one it replaces stays accepted for
   * `graceSeconds` (database time), or not at all for 0. A secret an earlier rotation
   * replaced is dropped.
   * @returns undefined when there is no such client, or it is public or authenticates with its keys (private_key_jwt)
   */
  rotateSecret(id: string, secretHash: string, graceSeconds: number): Promise<ClientWithSecret | undefined>;
  /**
   * What the resources declare, read in one statement: `declared`, the scopes of each resource's
   * own service clients (a client with no grant, or with the token exchange grant alone,
   * registered for it), merged; `exchangeTargets`, for each resource, the resources a client
   * registered for it with the token exchange grant may exchange tokens into (its
   * `mayExchangeFor`), merged. A resource without such a client is absent from each.
   */
  resourcePolicy(): Promise<{ declared: Map<string, string[]>; exchangeTargets: Map<string, string[]> }>;
}

/** Thrown when no client has the id given (the CLI exits 2 on it). */
export class UnknownClientError extends Error {
  override name = 'UnknownClientError';
  constructor(id: string) {
    super(`no client with id ${id}`);
  }
}

/** Thrown when a change asks for something a client cannot do (the CLI exits 2 on it). */
export class ClientChangeError extends Error {
  override name = 'ClientChangeError';
}

function withoutSecret({ secretHash: _secretHash, previousSecretHash: _previousSecretHash, ...record }: ClientWithSecret): ClientRecord {
  return record;
}

function settingsOf(client: ClientSettings): ClientSettings {
  const { name, grants, scopes, roles, redirectUris, postLogoutRedirectUris, resources, firstParty, accessTokenTtl } = client;
  const { auth, jwks, jwksUri, requireDpop, mayExchangeFor } = client;
  return { name, grants, scopes, roles, redirectUris, postLogoutRedirectUris, resources, public: client.public, firstParty, accessTokenTtl, auth, jwks, jwksUri, requireDpop, mayExchangeFor };
}

/** Whether the client holds a secret: a confidential client that does not authenticate with its keys. */
export function usesSecret(client: Pick<ClientSettings, 'public' | 'auth'>): boolean {
  return !client.public && client.auth !== 'private_key_jwt';
}

export interface CreatedClient {
  readonly client: ClientRecord;
  /** Shown once; only its SHA-256 is stored. Undefined for public clients. */
  readonly clientSecret: string | undefined;
}

/** Registers a client. The secret is generated here and never stored in the clear; a public or private_key_jwt client gets none. */
export async function createClient(clients: ClientStore, input: NewClient): Promise<CreatedClient> {
  const client = newClientSchema.parse(input);
  const clientSecret = usesSecret(client) ? generateSecret() : undefined;
  const stored = await clients.insert({
    id: generateId(),
    secretHash: clientSecret === undefined ? null : hashSecret(clientSecret),
    ...settingsOf(client),
  });
  return { client: withoutSecret(stored), clientSecret };
}

export async function listClients(clients: ClientStore): Promise<ClientRecord[]> {
  return (await clients.list()).map(withoutSecret);
}

/** One client, secret digests left out. */
export async function showClient(clients: ClientStore, id: string): Promise<ClientRecord> {
  const client = await clients.find(id);
  if (client === undefined) throw new UnknownClientError(id);
  return withoutSecret(client);
}

/**
 * The settings of `stored` with `changes` applied, checked as a new client is (every field
 * rule and every rule between them, so an update can make nothing `create` would refuse).
 * A client stays public or confidential: the one has a secret, the other not.
 * @throws z.ZodError when the result breaks a rule
 * @throws ClientChangeError when the change would turn a public client confidential or back
 */
export function mergeClientUpdate(stored: ClientSettings, changes: Omit<z.output<typeof clientUpdateSchema>, 'id' | 'disabled'>): ClientSettings {
  if (changes.public !== undefined && changes.public !== stored.public) {
    throw new ClientChangeError(
      stored.public
        ? 'a public client cannot be made confidential (it has no secret): register a new client'
        : 'a confidential client cannot be made public (--public): register a new client',
    );
  }
  const defined = Object.fromEntries(Object.entries(changes).filter(([, value]) => value !== undefined));
  return settingsOf(newClientSchema.parse(withKeyChanges({ ...settingsOf(stored), ...defined }, changes)));
}

/**
 * The keys an update leaves: a key source given replaces the other one (`--jwks-uri` after
 * `--jwks-file`), and a client that stops using private_key_jwt (with no keys given) drops its
 * keys. A client that takes up private_key_jwt drops its secret with them (ClientStore.update);
 * one that goes back to a secret has none until `clients rotate-secret` gives it one.
 */
function withKeyChanges(merged: ClientSettings, changes: { readonly jwks?: ClientKeySet | null | undefined; readonly jwksUri?: string | null | undefined }): ClientSettings {
  const jwksGiven = changes.jwks !== undefined;
  const uriGiven = changes.jwksUri !== undefined;
  if (!jwksGiven && !uriGiven) return merged.auth === 'private_key_jwt' ? merged : { ...merged, jwks: null, jwksUri: null };
  return { ...merged, jwks: jwksGiven ? merged.jwks : null, jwksUri: uriGiven ? merged.jwksUri : null };
}

/**
 * Changes a client's settings, and disables or enables it when `disabled` is given; on a bad
 * value nothing is written (see `mergeClientUpdate`). Run it in a transaction for both to be
 * one change (the admin commands do).
 */
export async function updateClient(clients: ClientStore, input: ClientUpdate): Promise<ClientRecord> {
  const { id, disabled, ...changes } = clientUpdateSchema.parse(input);
  let updated: ClientWithSecret | undefined;
  if (Object.values(changes).some((value) => value !== undefined)) {
    updated = await clients.update(id, (stored) => mergeClientUpdate(stored, changes));
    if (updated === undefined) throw new UnknownClientError(id);
  }
  if (disabled !== undefined) updated = await clients.setDisabled(id, disabled);
  if (updated === undefined) throw new UnknownClientError(id);
  return withoutSecret(updated);
}

/** A page of clients, oldest first, secret digests left out. */
export async function pageClients(clients: ClientStore, query: PageQuery): Promise<Page<ClientRecord>> {
  const { items, next } = await clients.page(query);
  return { items: items.map(withoutSecret), next };
}

/** Disables or enables a client; disabling revokes every grant it holds (see `ClientStore.setDisabled`). */
export async function setClientDisabled(clients: ClientStore, id: string, disabled: boolean): Promise<ClientRecord> {
  const changed = await clients.setDisabled(id, disabled);
  if (changed === undefined) throw new UnknownClientError(id);
  return withoutSecret(changed);
}

/** Deletes a client and revokes every grant it holds. */
export async function deleteClient(clients: ClientStore, id: string): Promise<ClientRecord> {
  const deleted = await clients.delete(id);
  if (deleted === undefined) throw new UnknownClientError(id);
  return withoutSecret(deleted);
}

export interface RotatedSecret {
  readonly client: ClientRecord;
  /** Shown once; only its SHA-256 is stored. */
  readonly clientSecret: string;
}

/**
 * Gives a confidential client a new secret; the old one keeps working for `graceSeconds`
 * (0 to MAX_SECRET_GRACE), then never again.
 */
export async function rotateClientSecret(clients: ClientStore, id: string, graceSeconds: number): Promise<RotatedSecret> {
  const stored = await clients.find(id);
  if (stored === undefined) throw new UnknownClientError(id);
  if (stored.public) throw new ClientChangeError(`client ${id} is public: it has no secret to rotate`);
  if (stored.auth === 'private_key_jwt') {
    throw new ClientChangeError(`client ${id} authenticates with private_key_jwt (its keys): it has no secret to rotate; clients update --jwks-file or --jwks-uri changes its keys`);
  }
  const clientSecret = generateSecret();
  const rotated = await clients.rotateSecret(id, hashSecret(clientSecret), graceSeconds);
  // deleted meanwhile (a client never turns public; one that took up private_key_jwt meanwhile is refused the same way)
  if (rotated === undefined) throw new UnknownClientError(id);
  return { client: withoutSecret(rotated), clientSecret };
}
