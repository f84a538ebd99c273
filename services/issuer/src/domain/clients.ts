import { z } from 'zod';

import { generateId, generateSecret, hashSecret } from './secrets.js';
import { redirectUri, resourceUri, roleList, scopeList } from './validation.js';

export const GRANT_TYPES = ['client_credentials', 'password', 'authorization_code', 'refresh_token'] as const;
/** Bounds of a client's own access-token lifetime, in seconds (one minute to one day). */
export const MIN_ACCESS_TOKEN_TTL = 60;
export const MAX_ACCESS_TOKEN_TTL = 86_400;
export type GrantType = (typeof GRANT_TYPES)[number];

/** What an administrator asks for when registering a client. */
export const newClientSchema = z
  .object({
    name: z.string().trim().min(1, 'a name is required').max(200, 'a name is at most 200 characters'),
    grants: z
      .array(z.enum(GRANT_TYPES, { error: `a grant is one of ${GRANT_TYPES.join(', ')}` }))
      .default([])
      .transform((grants) => [...new Set(grants)]),
    scopes: scopeList.default([]),
    roles: roleList.default([]),
    redirectUris: z.array(redirectUri).max(20).default([]),
    resources: z.array(resourceUri).max(20).default([]),
    public: z.boolean().default(false),
    firstParty: z.boolean().default(false),
    accessTokenTtl: z
      .number({ error: `--access-token-ttl is a whole number of seconds from ${MIN_ACCESS_TOKEN_TTL} to ${MAX_ACCESS_TOKEN_TTL}` })
      .int(`--access-token-ttl is a whole number of seconds from ${MIN_ACCESS_TOKEN_TTL} to ${MAX_ACCESS_TOKEN_TTL}`)
      .min(MIN_ACCESS_TOKEN_TTL, `--access-token-ttl is at least ${MIN_ACCESS_TOKEN_TTL} seconds`)
      .max(MAX_ACCESS_TOKEN_TTL, `--access-token-ttl is at most ${MAX_ACCESS_TOKEN_TTL} seconds (one day)`)
      .nullable()
      .default(null),
  })
  .strict()
  .superRefine((client, ctx) => {
    const has = (grant: GrantType) => client.grants.includes(grant);
    const problem = (message: string) => ctx.addIssue({ code: 'custom', message });
    if (client.public && (has('client_credentials') || has('password'))) {
      problem('a public client cannot use the client_credentials or password grant (it cannot authenticate)');
    }
    if (has('authorization_code') && client.redirectUris.length === 0) {
      problem('the authorization_code grant needs at least one --redirect-uri');
    }
    if (!has('authorization_code') && client.redirectUris.length > 0) {
      problem('--redirect-uri is only meaningful with the authorization_code grant');
    }
    if (has('refresh_token') && !has('authorization_code') && !has('password')) {
      problem('the refresh_token grant needs the authorization_code or password grant');
    }
    if (client.grants.length === 0) {
      // a resource service's own client: it authenticates to introspection and the revocation feed
      if (client.public) problem('a client with no --grant (a resource service\'s own client) must be confidential: it authenticates with its secret');
      if (client.firstParty) problem('--first-party is only meaningful with the authorization_code grant');
      if (client.accessTokenTtl !== null) problem('--access-token-ttl is only meaningful for a client with a grant');
    }
  });

export type NewClient = z.input<typeof newClientSchema>;

export interface ClientRecord {
  readonly id: string;
  readonly name: string;
  readonly grants: readonly GrantType[];
  readonly scopes: readonly string[];
  readonly roles: readonly string[];
  readonly redirectUris: readonly string[];
  readonly resources: readonly string[];
  readonly public: boolean;
  readonly firstParty: boolean;
  /** Lifetime of its access tokens in seconds; null: the issuer's ACCESS_TOKEN_TTL. */
  readonly accessTokenTtl: number | null;
  readonly createdAt: Date;
}

/** A stored client with its secret digest; only the client authentication path reads this. */
export interface ClientWithSecret extends ClientRecord {
  readonly secretHash: string | null;
}

/** A client as it is first stored; `secretHash` is the SHA-256 of its secret (none for public clients). */
export interface ClientToInsert extends Omit<ClientRecord, 'createdAt'> {
  readonly secretHash: string | null;
}

/** Where registered clients are kept. */
export interface ClientStore {
  insert(client: ClientToInsert): Promise<ClientWithSecret>;
  /** Every client, oldest first. */
  list(): Promise<ClientWithSecret[]>;
  find(id: string): Promise<ClientWithSecret | undefined>;
  /**
   * The scopes each resource declares: those of the resource services' own clients (clients
   * with no grant) registered for it, merged. Resources without such a client are absent.
   */
  declaredResourceScopes(): Promise<Map<string, string[]>>;
}

function withoutSecret({ secretHash: _secretHash, ...record }: ClientWithSecret): ClientRecord {
  return record;
}

export interface CreatedClient {
  readonly client: ClientRecord;
  /** Shown once; only its SHA-256 is stored. Undefined for public clients. */
  readonly clientSecret: string | undefined;
}

/** Registers a client. The secret is generated here and never stored in the clear. */
export async function createClient(clients: ClientStore, input: NewClient): Promise<CreatedClient> {
  const client = newClientSchema.parse(input);
  const clientSecret = client.public ? undefined : generateSecret();
  const stored = await clients.insert({
    id: generateId(),
    name: client.name,
    secretHash: clientSecret === undefined ? null : hashSecret(clientSecret),
    grants: client.grants,
    scopes: client.scopes,
    roles: client.roles,
    redirectUris: client.redirectUris,
    resources: client.resources,
    public: client.public,
    firstParty: client.firstParty,
    accessTokenTtl: client.accessTokenTtl,
  });
  return { client: withoutSecret(stored), clientSecret };
}

export async function listClients(clients: ClientStore): Promise<ClientRecord[]> {
  return (await clients.list()).map(withoutSecret);
}
